//! The command line of the shim's own commands (`ls`, `inspect`, ...), and the shim's help.
//!
//! Only the admin side goes through clap: runc's command line passes through `cli.rs`, which
//! keeps every word as it is. ocinet's global flags are parsed there too (before the command);
//! they are declared here only so that `--help` shows them.

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::{Result, ShimError};

/// Told after the admin commands in `ocinet-shim --help`.
const PASS_THROUGH: &str = "\
Every other command (create, run, start, state, kill, delete, exec, ps, ...) and every other
flag goes unchanged to the OCI runtime: --runtime-path, else OCINET_RUNTIME, else the first of
runc, crun on PATH. On create and run, a bundle with io.ocinet.* annotations has its config.json
rewritten first; after delete, what the container's hook left behind is cleaned up.
ocinet's flags go before the command. Run 'ocinet-shim COMMAND --help' for one command's flags.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct FormatArg {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// An admin command with its arguments, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AdminCommand {
    /// List the containers ocinet wired: id, mode, network, address, ports
    Ls(FormatArg),
    /// Show everything ocinet recorded about containers
    Inspect {
        /// Container ids
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// List the networks: name, bridge, subnet, gateway, containers
    Networks(FormatArg),
    /// Tear down every container whose process is gone or which is from an earlier boot, and
    /// retire networks only CNI configurations defined once none names them and none is used
    Gc {
        /// The runtime's CNI configuration directory (repeatable)
        #[arg(
            long = "cni-config-dir",
            value_name = "DIR",
            default_value = "/etc/cni/net.d"
        )]
        cni_config_dirs: Vec<std::path::PathBuf>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show ocinet's activity log (setups and teardowns), of one container or of all
    Logs {
        /// Only this container's entries
        #[arg(value_name = "ID")]
        id: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Restore the firewall rules of running containers (after 'nft flush ruleset')
    Reload(FormatArg),
}

impl AdminCommand {
    pub fn format(&self) -> Format {
        match self {
            AdminCommand::Ls(f)
            | AdminCommand::Networks(f)
            | AdminCommand::Gc { format: f, .. }
            | AdminCommand::Reload(f)
            | AdminCommand::Inspect { format: f, .. }
            | AdminCommand::Logs { format: f, .. } => f.format,
        }
    }
}

/// OCI runtime wrapper (runc, crun) that gives containers ocinet's network modes.
#[derive(Debug, Parser)]
#[command(
    name = "ocinet-shim",
    override_usage = "ocinet-shim [OCINET FLAGS] COMMAND [ARGS]\n       \
                      ocinet-shim [OCINET FLAGS] [RUNTIME FLAGS] RUNTIME-COMMAND [ARGS]",
    after_help = PASS_THROUGH,
    disable_help_subcommand = true
)]
struct AdminCli {
    #[command(subcommand)]
    command: AdminCommand,
}

/// What an admin command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(AdminCommand),
    /// `--help`: the text to print; nothing runs.
    Help(String),
}

/// The clap command, with ocinet's global flags added for `--help` (cli.rs parses them).
fn command() -> clap::Command {
    let global = |name: &'static str, value: &'static str, help: &'static str| {
        Arg::new(name).long(name).value_name(value).help(help)
    };
    AdminCli::command()
        .arg(global(
            "ocinet-root",
            "DIR",
            "State [env: OCINET_ROOT] [default: /run/ocinet]",
        ))
        .arg(global(
            "ocinet-config-dir",
            "DIR",
            "Networks [env: OCINET_CONFIG_DIR] [default: /etc/ocinet]",
        ))
        .arg(global(
            "runtime-path",
            "PATH",
            "The runtime [env: OCINET_RUNTIME] [default: runc or crun on PATH]",
        ))
        .arg(
            Arg::new("version")
                .short('v')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Print ocinet's version, then the runtime's"),
        )
}

/// Parses `NAME ARGS...` of an admin command (`name` is one cli.rs recognised).
pub fn parse(name: &str, args: &[String]) -> Result<Parsed> {
    let argv = ["ocinet-shim", name]
        .into_iter()
        .map(str::to_string)
        .chain(args.iter().cloned());
    let err = match command().try_get_matches_from(argv) {
        Ok(matches) => match AdminCli::from_arg_matches(&matches) {
            Ok(cli) => return Ok(Parsed::Run(cli.command)),
            Err(err) => err,
        },
        Err(err) => err,
    };
    match err.kind() {
        ErrorKind::DisplayHelp => Ok(Parsed::Help(err.to_string())),
        _ => Err(ShimError::Arguments {
            command: name.to_string(),
            message: one_line(&err.to_string()),
        }),
    }
}

/// `ocinet-shim --help`: the admin commands, ocinet's flags, and what goes to the runtime.
pub fn overview() -> String {
    command().render_help().to_string()
}

/// clap's error (a headline, maybe a tip or the valid values, the usage) as one line: the
/// headline and the valid values; the usage is in `--help`.
fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn run(name: &str, args: &str) -> AdminCommand {
        match parse(name, &words(args)) {
            Ok(Parsed::Run(cmd)) => cmd,
            other => panic!("{name} {args}: {other:?}"),
        }
    }

    fn error(name: &str, args: &str) -> String {
        match parse(name, &words(args)) {
            Err(e) => e.to_string(),
            other => panic!("{name} {args}: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_lists_every_admin_command_and_flag() {
        let help = overview();
        for name in crate::cli::ADMIN_COMMANDS {
            assert!(
                help.lines().any(|l| l.trim_start().starts_with(name)),
                "{name} missing from:\n{help}"
            );
        }
        for flag in [
            "--ocinet-root",
            "--ocinet-config-dir",
            "--runtime-path",
            "OCINET_ROOT",
            "OCINET_CONFIG_DIR",
            "OCINET_RUNTIME",
            "--version",
            "unchanged to the OCI runtime",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
    }

    #[test]
    fn every_admin_command_has_help() {
        for name in crate::cli::ADMIN_COMMANDS {
            for flag in ["--help", "-h"] {
                match parse(name, &[flag.to_string()]) {
                    Ok(Parsed::Help(text)) => {
                        assert!(text.contains(&format!("ocinet-shim {name}")), "{text}");
                        assert!(text.contains("--format"), "{text}");
                        assert!(text.contains("table") && text.contains("json"), "{text}");
                    }
                    other => panic!("{name} {flag}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn format_flag() {
        assert_eq!(run("ls", "").format(), Format::Table);
        assert_eq!(run("ls", "--format json").format(), Format::Json);
        assert_eq!(run("ls", "-f json").format(), Format::Json);
        assert_eq!(
            run("inspect", "a --format=json b"),
            AdminCommand::Inspect {
                ids: words("a b"),
                format: FormatArg {
                    format: Format::Json
                }
            }
        );
        assert_eq!(
            run("logs", "web"),
            AdminCommand::Logs {
                id: Some("web".into()),
                format: FormatArg {
                    format: Format::Table
                }
            }
        );
        assert!(error("ls", "--format yaml").contains("table, json"));
    }

    #[test]
    fn bad_arguments_are_one_line() {
        for (name, args, expected) in [
            ("ls", "--bogus", "unexpected argument '--bogus'"),
            ("ls", "extra", "unexpected argument 'extra'"),
            ("gc", "--format", "a value is required for '--format"),
            ("inspect", "", "required arguments were not provided"),
            ("logs", "a b", "unexpected argument 'b'"),
        ] {
            let message = error(name, args);
            assert!(!message.contains('\n'), "{message}");
            assert!(message.contains(expected), "{name} {args}: {message}");
            assert!(
                message.ends_with(&format!("see 'ocinet-shim {name} --help'")),
                "{message}"
            );
        }
    }
}
