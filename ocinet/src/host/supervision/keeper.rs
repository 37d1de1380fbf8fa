//! The keeper: waits on its link to the helper and, when the helper dies, starts it again as a
//! setup does (`helper::spawn_with_word`, under the setup's start lock, only when none runs and
//! something needs one, waiting for its word), backing off while it keeps dying. It leaves
//! when the helper leaves on purpose, when nothing needs a helper any more, or when the state
//! root is gone. One thread, no runtime: it waits in `poll`.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::link::{Heard, Link};
use super::{
    partner_command, pause, seconds, title, Partner, StateDirs, Supervised, CHECK_EVERY, KEEPER,
    KEPT, LINK_FD,
};
use crate::host::helper::{self, StartError};

/// How a restart went.
enum Restart {
    Serving(Partner),
    /// No helper is to be started (why): the keeper leaves.
    Unwanted(&'static str),
    Failed(String),
}

/// Keeps the helper whose link is `link` (it started this keeper); never returns.
pub(super) fn run(helper: &dyn Supervised, link: Link) -> ! {
    let me = title(helper.name(), KEEPER);
    let dirs = StateDirs::capture(&helper.dirs());
    let mut partner = Partner::adopted(link);
    let mut backoff = Backoff::default();
    loop {
        match partner.link.listen(CHECK_EVERY) {
            Heard::Nothing => {
                if dirs.gone() {
                    partner.link.bye();
                    leave(&me, GONE);
                }
                continue;
            }
            Heard::Bye => std::process::exit(0),
            Heard::Gone => {}
        }
        let mut why = partner.obituary(helper.name());
        let mut wait = backoff.after(partner.ran());
        partner = loop {
            match wait.is_zero() {
                true => crate::stderr_line!("{me}: {why}: starting it again"),
                false => crate::stderr_line!("{me}: {why}: starting it again in {}", seconds(wait)),
            }
            if !wait.is_zero() && !pause(wait, || !dirs.gone() && helper.needed()) {
                leave(&me, unwanted(&dirs));
            }
            match restart(helper, &dirs) {
                Restart::Serving(partner) => break partner,
                Restart::Unwanted(why) => leave(&me, why),
                Restart::Failed(e) => {
                    why = format!("cannot start {}: {e}", helper.name());
                    wait = backoff.after(Duration::ZERO);
                }
            }
        };
        let pid = partner.pid.unwrap_or_default();
        crate::stderr_line!("{me}: {} (pid {pid}) serves again", helper.name());
    }
}

/// Why no helper is to be started, when one of the checks said so.
fn unwanted(dirs: &StateDirs) -> &'static str {
    match dirs.gone() {
        true => GONE,
        false => "nothing needs it any more",
    }
}

const GONE: &str = "its state directory is gone";

fn leave(me: &str, why: &str) -> ! {
    crate::stderr_line!("{me}: {why}: exiting");
    std::process::exit(0)
}

/// One start of the helper, as a setup would start it.
fn restart(helper: &dyn Supervised, dirs: &StateDirs) -> Restart {
    let guard = match helper.start_lock() {
        Ok(guard) => guard,
        Err(_) if dirs.gone() => return Restart::Unwanted(GONE),
        Err(e) => return Restart::Failed(e.to_string()),
    };
    if dirs.gone() {
        return Restart::Unwanted(GONE);
    }
    // A setup started one after the last died: that one starts a keeper of its own.
    if helper.running() {
        return Restart::Unwanted("another one runs");
    }
    if !helper.needed() {
        return Restart::Unwanted("nothing needs it any more");
    }
    let (link, theirs) = match Link::pair() {
        Ok(pair) => pair,
        Err(e) => return Restart::Failed(format!("cannot make a link: {e}")),
    };
    // Its stdio are this keeper's: its log, /dev/null.
    let cmd = partner_command(helper.name(), KEPT);
    let (mut child, ready) = match helper::spawn_with_word(cmd, &[(theirs.as_fd(), LINK_FD)]) {
        Ok(started) => started,
        Err(e) => return Restart::Failed(e.to_string()),
    };
    drop(theirs);
    let since = Instant::now();
    let word = helper::await_word(&mut child, ready, helper.start_timeout());
    drop(guard);
    let alive = matches!(child.try_wait(), Ok(None));
    let partner = |child| Partner::started(link, child, since);
    match word {
        Ok(()) => Restart::Serving(partner(child)),
        // Slow, not dead: watched as any other; it is restarted if it dies.
        Err(StartError::Silent(why)) if alive => {
            crate::stderr_line!("{}: {why}", title(helper.name(), KEEPER));
            Restart::Serving(partner(child))
        }
        Err(StartError::Spawn(why) | StartError::Refused(why) | StartError::Silent(why)) => {
            let _ = child.kill();
            let _ = child.wait();
            Restart::Failed(why)
        }
    }
}
