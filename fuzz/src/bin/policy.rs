//! Policy file parser: parse; a loaded policy must lint and decide.

use gatehouse_policy::{Action, Caller, Machine, Process, Request};

struct Nothing;

impl Machine for Nothing {
    fn user_exists(&self, _: &str) -> bool {
        false
    }
    fn group_exists(&self, _: &str) -> bool {
        true
    }
    fn file_exists(&self, _: &str) -> bool {
        false
    }
    fn unit_exists(&self, _: &str) -> bool {
        true
    }
}

fn target(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match gatehouse_policy::parse("fuzz.toml", &text) {
        Ok(p) => {
            let w = p.lint("fuzz.toml", &text, &Nothing);
            let _ = w.to_string();
            let caller = Caller {
                uid: Some(1),
                user: Some("u".into()),
                gids: vec![1],
                group_names: vec!["g".into()],
                processes: vec![Process { uid: 1, unit: Some("a.service".into()), ..Process::default() }],
            };
            let mut allowed = 0;
            for action in Action::ALL {
                let r = Request::new(action).identity(Some("system")).audience(Some("x"));
                let d = p.decide(&caller, &r);
                assert_eq!(d, p.decide_naive(&caller, &r), "indexed and naive disagree");
                allowed += usize::from(d.is_allowed());
                let _ = d.summary();
            }
            format!("ok:{}:{allowed}", w.len())
        }
        Err(d) => {
            let _ = d.to_string();
            format!("err:{}", d.iter().next().map(|x| x.message.split('`').next().unwrap_or("")).unwrap_or(""))
        }
    }
}

const DICT: &[&str] = &[
    "version = 1\n", "[[assignments]]\n", "[[deny_assignments]]\n", "[[roles]]\n", "[identities.x]\n", "[modes]\n",
    "name = \"a\"\n", "principal = \"uid:1\"\n", "role = \"Metadata Owner\"\n", "identities = [\"*\"]\n",
    "audiences = [\"*\"]\n", "condition = '''", "'''\n", "kind = \"user\"\n", "token = \"audit\"\n",
    "trusted_services = false\n", "principals = [\"everyone\"]\n", "actions = [\"Gatehouse/*\"]\n",
    "@Principal[unit] StringEquals 'a.service'", "allow_warnings = [\"orphan\"]\n", "\"", "=", "\n",
];

fn main() {
    std::process::exit(gatehouse_fuzz::run("policy", target, DICT, gatehouse_fuzz::seconds_arg()));
}
