//! IPv6 forwarding without breaking the host's own IPv6 (docker/for-linux#844, moby#43466).
//!
//! A host that learned its IPv6 default route from router advertisements (`accept_ra` 1, the
//! kernel's default) loses that route the moment IPv6 forwarding goes on: a router does not
//! take advertisements, and the kernel purges every advertised default route of a link whose
//! `accept_ra` is not 2, and ignores the advertisements that would bring it back. The host's
//! IPv6 then stops with no word. Before forwarding goes on, each link with such a route gets
//! `accept_ra` 2 (take advertisements even when forwarding), which keeps the route; the caller
//! logs the links it changed. A link still waiting for its first advertisement has no such
//! route to see: README says to set its `accept_ra` to 2 by hand.

use crate::error::{Error, Result};
use crate::host::sysctl;
use crate::netlink::rtnl::link::{self, Rtnl};

/// Sets `accept_ra` 2 on every link of the calling thread's namespace that has a
/// router-advertised IPv6 default route and `accept_ra` 1; returns their names.
pub(crate) fn keep_router_advertised_routes(rtnl: &Rtnl) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for index in link::ipv6_ra_default_route_links(rtnl)? {
        let Some(name) = name_of(index) else {
            continue; // gone since the dump
        };
        let setting = format!("ipv6/conf/{name}/accept_ra");
        let value = sysctl::read(&setting)
            .map_err(|e| Error::io(format!("cannot read net/{setting}"), e))?;
        if value.trim() == "1" {
            sysctl::write(&setting, "2")
                .map_err(|e| Error::io(format!("cannot write net/{setting}"), e))?;
            changed.push(name);
        }
    }
    Ok(changed)
}

/// The name of link `index` in the calling thread's namespace.
fn name_of(index: u32) -> Option<String> {
    nix::net::if_::if_indextoname(index)
        .ok()?
        .into_string()
        .ok()
}
