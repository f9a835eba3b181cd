use super::{command, completions, man_pages};
use std::process::Command;

/// `gatehouse-run`, `gatehouse-audit-verify`, …: every visible command.
fn page_names(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    let name = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix}-{}", cmd.get_name())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page_names(sub, &name, out);
    }
    out.push(name);
}

#[test]
fn every_subcommand_has_a_page_and_every_page_renders_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let written = man_pages(dir.path()).unwrap();
    let mut want = Vec::new();
    page_names(&command(), "", &mut want);
    assert!(want.contains(&"gatehouse-run".to_owned()), "{want:?}");
    assert!(
        want.contains(&"gatehouse-audit-verify".to_owned()),
        "{want:?}"
    );
    assert!(!want.iter().any(|n| n.contains("generate")), "{want:?}");
    for name in &want {
        assert!(
            dir.path().join(format!("{name}.1")).is_file(),
            "no page for `{name}`"
        );
    }
    assert!(dir.path().join("gatehouse-policy.5").is_file());
    assert_eq!(written.len(), want.len() + 1, "{written:?}");

    // Render each as man(1) does (tbl too, for the policy page's tables), with
    // groff's warnings on: lintian calls any warning an error in the package.
    let man = Command::new("man").arg("--version").output();
    assert!(
        man.is_ok_and(|o| o.status.success()),
        "man(1) is needed to check the pages: apt-get install man-db groff-base"
    );
    for page in &written {
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(page)
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.is_empty(),
            "{}: {err}",
            page.display()
        );
        assert!(out.stdout.len() > 200, "{}: nearly empty", page.display());
        // and its NAME line is one whatis(1) can read
        let whatis = Command::new("lexgrog").arg(page).output().unwrap();
        assert!(
            whatis.status.success(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&whatis.stdout)
        );
    }
    let text = Command::new("man")
        .args(["-l", "-Tutf8"])
        .arg(dir.path().join("gatehouse-run.1"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    // man(1) into a pipe still overstrikes bold (`X\bX`): read the text.
    let text = String::from_utf8_lossy(&text.stdout);
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    let text = plain;
    for want in [
        "--upstream",
        "--policy",
        "--log-format",
        "SEE ALSO",
        "gatehouse-policy(5)",
    ] {
        assert!(
            text.contains(want),
            "gatehouse-run(1) lacks `{want}`:\n{text}"
        );
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let written = completions(dir.path()).unwrap();
    assert_eq!(written.len(), 3);
    for file in ["gatehouse", "_gatehouse", "gatehouse.fish"] {
        let script = std::fs::read_to_string(dir.path().join(file)).unwrap();
        for sub in command().get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(
                script.contains(sub.get_name()),
                "{file} lacks `{}`",
                sub.get_name()
            );
        }
        assert!(!script.contains("generate"), "{file} offers `generate`");
        assert!(script.contains("log-format"), "{file}");
    }
    // bash loads it and registers a completion for `gatehouse`.
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p gatehouse")
        .arg("bash")
        .arg(dir.path().join("gatehouse"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("gatehouse"), "{said}");
}
