//! What an installation adds beside the binary: shell completions (`cutover completions
//! SHELL`) and the man page (`cutover man`), generated at run time from the same command
//! line definition as `--help`, so they never drift from it and need no build step: a
//! package or a user writes them wherever their system keeps them (README, "Install").

use crate::cli::Cli;
use clap::CommandFactory;

/// The completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cutover", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page, in roff: the command, then a section per command.
pub(crate) fn man() -> anyhow::Result<String> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub.clone().name(format!("cutover-{}", sub.get_name()));
        let mut page = Vec::new();
        let man = clap_mangen::Man::new(sub);
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        man.render_extra_section(&mut page)?;
        out.extend(page);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_the_man_page_name_every_command() {
        let bash = completions(clap_complete::Shell::Bash);
        assert!(
            bash.contains("cutover") && bash.contains("verify"),
            "{bash}"
        );
        let page = man().unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..page.len().min(200)]);
        for name in ["cutover\\-load", "cutover\\-check", "\\-\\-dry\\-run"] {
            assert!(page.contains(name), "{name} missing from the man page");
        }
    }
}
