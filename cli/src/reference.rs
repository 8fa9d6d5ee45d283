//! `docs/reference.md`: every option of every command, as `--help` gives it. The file is
//! generated from the clap definitions, and a test fails when the two disagree (run it with
//! `RUNGS_UPDATE_REFERENCE=1` to write the file again).

use clap::CommandFactory;

/// Every command path (`rungs`, `rungs encode`, `rungs ladder compare`, ...) with its command,
/// depth first in the order `--help` lists them.
fn commands() -> Vec<(String, clap::Command)> {
    fn walk(path: String, cmd: clap::Command, out: &mut Vec<(String, clap::Command)>) {
        let subs: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .cloned()
            .collect();
        out.push((path.clone(), cmd));
        for s in subs {
            walk(format!("{path} {}", s.get_name()), s, out);
        }
    }
    let mut root = crate::args::Cli::command().term_width(100);
    root.build();
    let mut out = Vec::new();
    walk("rungs".into(), root, &mut out);
    out
}

/// The reference as Markdown: a section per command holding its `--help`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# rungs: every command and option\n\n\
         Generated from the command's own `--help` (`cli/src/reference.rs`); a test fails when \
         the two differ.\n",
    );
    for (path, mut cmd) in commands() {
        let help = cmd.render_long_help().to_string();
        let help: Vec<&str> = help.lines().map(str::trim_end).collect();
        out.push_str(&format!(
            "\n## `{path}`\n\n```text\n{}\n```\n",
            help.join("\n")
        ));
    }
    out
}

/// The commands that do something (no group of subcommands), as `rungs NAME ...`.
pub fn leaf_commands() -> Vec<String> {
    commands()
        .into_iter()
        .filter(|(p, c)| p != "rungs" && c.get_subcommands().all(|s| s.get_name() == "help"))
        .map(|(p, _)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

    #[test]
    fn the_reference_is_the_help() {
        let path = format!("{ROOT}/docs/reference.md");
        let want = markdown();
        if std::env::var_os("RUNGS_UPDATE_REFERENCE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/reference.md differs from --help: run \
             `RUNGS_UPDATE_REFERENCE=1 cargo test -p rungs --bin rungs reference` to write it again"
        );
        // Every option of every command is in it.
        for (path, cmd) in commands() {
            for arg in cmd.get_arguments() {
                if let Some(long) = arg.get_long() {
                    assert!(have.contains(&format!("--{long}")), "{path} --{long}");
                }
            }
        }
    }

    #[test]
    fn the_readme_lists_every_command_once() {
        let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
        let table: Vec<&str> = readme
            .split("## Commands\n\n")
            .nth(1)
            .expect("the README has a Commands section")
            .lines()
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .collect();
        let listed: Vec<String> = table
            .iter()
            .filter_map(|l| l.split('`').nth(1))
            .map(|c| c.split(" [").next().unwrap_or(c).to_owned())
            .map(|c| {
                c.split_whitespace()
                    .take_while(|w| w.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(listed, leaf_commands(), "README.md's command table");
    }
}
