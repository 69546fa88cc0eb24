//! Basic and network-status commands: `AT`, `ATE`, `ATI`, `AT+CGMM`,
//! `AT+CSQ`, `AT+CREG?`, `AT+CRESET`, ...

use super::{Engine, Fail, Res};
use crate::at::Form;

impl Engine {
    pub(super) fn basic(&mut self, name: &str, basic: Option<u32>, form: Form) -> Res {
        match (name, &form) {
            ("", Form::Exec) => self.ok(),
            ("E", Form::Exec) => match basic.unwrap_or(0) {
                0 => {
                    self.echo = false;
                    self.ok();
                }
                1 => {
                    self.echo = true;
                    self.ok();
                }
                _ => return Err(Fail::Plain),
            },
            ("I", Form::Exec) | ("+SIMCOMATI", Form::Exec) => {
                let p = self.profile.clone();
                self.info(&format!("Manufacturer: {}", p.manufacturer()));
                self.info_more(&format!("Model: {}", p.model_name));
                self.info_more(&format!("Revision: {}", p.revision));
                self.info_more(&format!("IMEI: {}", p.imei));
                self.info_more("+GCAP: +CGSM,+FCLASS,+DS");
                self.ok();
            }
            ("Z", Form::Exec) | ("&F", Form::Exec) | ("V", Form::Exec)
                if basic.unwrap_or(0) <= 1 =>
            {
                self.ok()
            }
            ("+CGMI", Form::Exec) | ("+GMI", Form::Exec) => {
                let m = self.profile.manufacturer();
                self.info(m);
                self.ok();
            }
            ("+CGMM", Form::Exec) | ("+GMM", Form::Exec) => {
                let m = self.profile.cgmm;
                self.info(m);
                self.ok();
            }
            ("+CGMR", Form::Exec) | ("+GMR", Form::Exec) => {
                let r = format!("+CGMR: {}", self.profile.revision);
                self.info(&r);
                self.ok();
            }
            ("+CGSN", Form::Exec) | ("+GSN", Form::Exec) => {
                let i = self.profile.imei;
                self.info(i);
                self.ok();
            }
            ("+CSQ", Form::Exec) => {
                self.info("+CSQ: 23,0");
                self.ok();
            }
            ("+CSQ", Form::Test) => {
                self.info("+CSQ: (0-31,99),(0-7,99)");
                self.ok();
            }
            ("+CREG", Form::Read) => {
                self.info("+CREG: 0,1");
                self.ok();
            }
            ("+CGREG", Form::Read) => {
                self.info("+CGREG: 0,1");
                self.ok();
            }
            ("+CEREG", Form::Read) => {
                self.info("+CEREG: 0,1");
                self.ok();
            }
            ("+CGATT", Form::Read) => {
                self.info("+CGATT: 1");
                self.ok();
            }
            ("+CGACT", Form::Read) => {
                self.info("+CGACT: 1,1");
                self.ok();
            }
            ("+CPIN", Form::Read) => {
                self.info("+CPIN: READY");
                self.ok();
            }
            ("+CPSI", Form::Read) => {
                self.info(
                    "+CPSI: LTE,Online,460-00,0x333C,39589680,308,EUTRAN-BAND3,1350,5,0,0,54,0,22",
                );
                self.ok();
            }
            ("+CGPADDR", Form::Exec) | ("+CGPADDR", Form::Write(_)) => {
                self.info("+CGPADDR: 1,10.49.14.68");
                self.ok();
            }
            ("+CGSOCKCONT", Form::Write(_))
            | ("+CGDCONT", Form::Write(_))
            | ("+CREG", Form::Write(_))
            | ("+CGREG", Form::Write(_))
            | ("+CEREG", Form::Write(_))
            | ("+CMEE", Form::Write(_))
            | ("+IPR", Form::Write(_))
            | ("+IFC", Form::Write(_)) => self.ok(),
            ("+CRESET", Form::Exec) => {
                self.ok();
                self.flush();
                self.reset(true);
            }
            ("+CRESET", Form::Test) => self.ok(),
            _ => return Err(Fail::Plain),
        }
        Ok(())
    }
}
