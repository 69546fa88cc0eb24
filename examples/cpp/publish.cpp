// publish.cpp - libcmqtt from C++17, with a few lines of RAII around the C handles.
//
//   publish_cpp [PORT [SERVER [TOPIC [COUNT]]]]
//
// PORT defaults to $CMQTT_PORT, SERVER to $CMQTT_SERVER or tcp://127.0.0.1:1883, TOPIC to
// cmqtt/example/cpp, COUNT to 3. Publishes "hello from C++ #i" with QoS 1.
//
// Build: c++ -std=c++17 -Wall -Wextra publish.cpp $(pkg-config --cflags --libs cmqtt)
#include <cmqtt.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace cmqtt {

// The RAII wrapper: a unique_ptr per handle type, and an exception carrying the result code.
struct ModemFree {
    void operator()(cmqtt_modem *m) const noexcept { cmqtt_modem_free(m); }
};
struct ClientFree {
    void operator()(cmqtt_client *c) const noexcept { cmqtt_client_free(c); }
};
using Modem = std::unique_ptr<cmqtt_modem, ModemFree>;
using Client = std::unique_ptr<cmqtt_client, ClientFree>;

struct Error : std::runtime_error {
    cmqtt_result code;
    Error(const std::string &what, cmqtt_result r)
        : std::runtime_error(what + ": " + cmqtt_result_str(r) + "\n  " +
                             cmqtt_last_error_message()),
          code(r) {}
};

inline void check(cmqtt_result r, const char *what) {
    if (r != CMQTT_OK) throw Error(what, r);
}

inline Modem open(const std::string &port, uint32_t baud = 115200) {
    cmqtt_modem *m = nullptr;
    check(cmqtt_modem_open(port.c_str(), baud, &m), "open");
    return Modem(m);
}

inline Client acquire(const Modem &modem, uint8_t index, const std::string &id) {
    cmqtt_client *c = nullptr;
    check(cmqtt_client_acquire(modem.get(), index, id.c_str(), false, &c), "acquire");
    return Client(c);
}

}  // namespace cmqtt

static std::string arg(int argc, char **argv, int i, const char *env, const char *fallback) {
    if (argc > i) return argv[i];
    const char *v = env ? std::getenv(env) : nullptr;
    return (v && *v) ? v : (fallback ? fallback : "");
}

int main(int argc, char **argv) {
    const std::string port = arg(argc, argv, 1, "CMQTT_PORT", nullptr);
    const std::string server = arg(argc, argv, 2, "CMQTT_SERVER", "tcp://127.0.0.1:1883");
    const std::string topic = arg(argc, argv, 3, nullptr, "cmqtt/example/cpp");
    const int count = std::stoi(arg(argc, argv, 4, nullptr, "3"));
    if (port.empty()) {
        std::cerr << "publish_cpp: no port: pass PORT or set CMQTT_PORT\n";
        return 2;
    }
    try {
        auto modem = cmqtt::open(port);
        std::cout << "modem " << cmqtt_modem_model_name(modem.get()) << ", libcmqtt "
                  << cmqtt_version() << "\n";
        cmqtt::check(cmqtt_modem_start(modem.get()), "start");
        auto client = cmqtt::acquire(modem, 0, "cmqtt-cpp-publish");
        cmqtt::check(cmqtt_client_connect(client.get(), server.c_str(), 60, true, nullptr,
                                          nullptr),
                     "connect");
        for (int i = 1; i <= count; i++) {
            const std::string payload = "hello from C++ #" + std::to_string(i);
            cmqtt::check(cmqtt_client_publish(client.get(), topic.c_str(),
                                              reinterpret_cast<const uint8_t *>(payload.data()),
                                              payload.size(), 1, false, 60),
                         "publish");
            std::cout << "published " << topic << ": " << payload << "\n";
        }
        cmqtt::check(cmqtt_client_disconnect(client.get(), 0), "disconnect");
        // client, then modem, are freed here (the client releases its index).
    } catch (const cmqtt::Error &e) {
        std::cerr << "publish_cpp: " << e.what() << "\n";
        return 1;
    }
    std::cout << "done\n";
    return 0;
}
