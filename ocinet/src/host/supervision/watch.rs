//! The helper's side: a thread that starts the helper's keeper once the helper serves (unless
//! the keeper started the helper) and starts another whenever that one dies, backing off as
//! the keeper does. It stops when the helper leaves, the keeper leaves on purpose, or the state
//! root is gone (the helper is leaving then too).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::link::{Heard, Link};
use super::{
    partner_command, pause, seconds, Partner, Shared, StateDirs, CHECK_EVERY, KEEPER, LINK_FD,
};
use crate::host::helper;

pub(super) fn run(shared: &Shared, inherited: Option<Link>) {
    let dirs = StateDirs::capture(&shared.dirs);
    let mut backoff = Backoff::default();
    let first = match inherited {
        Some(link) => Some(Partner::adopted(link)),
        None => start_until_done(shared, &dirs, &mut backoff, None),
    };
    let Some(mut partner) = first else { return };
    loop {
        match partner.link.listen(CHECK_EVERY) {
            Heard::Nothing if dirs.gone() => return,
            Heard::Nothing => continue,
            Heard::Bye => return,
            Heard::Gone => {}
        }
        let why = partner.obituary("its keeper");
        let wait = backoff.after(partner.ran());
        match start_until_done(shared, &dirs, &mut backoff, Some((why, wait))) {
            Some(next) => partner = next,
            None => return,
        }
    }
}

fn leaving(shared: &Shared) -> bool {
    shared.state.lock().map_or(true, |s| s.leaving)
}

/// Starts a keeper (after `wait`, logging `why` when it replaces one), trying again on failure;
/// `None` once the helper leaves or its state root is gone.
fn start_until_done(
    shared: &Shared,
    dirs: &StateDirs,
    backoff: &mut Backoff,
    mut after: Option<(String, Duration)>,
) -> Option<Partner> {
    loop {
        let wait = match after.take() {
            Some((why, wait)) => {
                match wait.is_zero() {
                    true => crate::stderr_line!("{}: {why}: starting another", shared.name),
                    false => crate::stderr_line!(
                        "{}: {why}: starting another in {}",
                        shared.name,
                        seconds(wait)
                    ),
                }
                wait
            }
            None => Duration::ZERO,
        };
        if !pause(wait, || !leaving(shared) && !dirs.gone()) {
            return None;
        }
        match start_keeper(shared) {
            Ok(started) => return started,
            Err(e) => {
                let wait = backoff.after(Duration::ZERO);
                after = Some((format!("cannot start its keeper: {e}"), wait));
            }
        }
    }
}

/// A keeper for this helper; `None` when the helper is leaving.
fn start_keeper(shared: &Shared) -> std::io::Result<Option<Partner>> {
    let mut state = shared
        .state
        .lock()
        .map_err(|_| std::io::Error::other("its supervision's state is poisoned"))?;
    // Under the lock `leaving` takes: a keeper started now hears the helper's `bye`.
    if state.leaving {
        return Ok(None);
    }
    let (link, theirs) = Link::pair()?;
    let child = helper::spawn_detached(
        partner_command(&shared.name, KEEPER),
        &[(theirs.as_fd(), LINK_FD)],
    )?;
    drop(theirs);
    state.to_keeper = Some(link.try_clone()?);
    Ok(Some(Partner::started(link, child, Instant::now())))
}
