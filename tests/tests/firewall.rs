//! ocinet's nftables table is made over raw nfnetlink (`netlink::nft::table`): `nft` must see exactly the
//! table it would make of the reference definition below, and the listing must load back.

use ocinet_tests::{Host, Runtime};

/// The table as a person would write it.
const REFERENCE: &str = "table inet ocinet {
	set masq_subnets { type ipv4_addr; flags interval; }
	map dnat_port { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval; }
	map dnat_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval; }
	map dnat_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
	set bridges { type ifname; }
	set isolated { type ifname; }
	set internal { type ifname; }
	set same_bridge { type ifname . ifname; }
	set groups { type devgroup; }
	set isolated_groups { type devgroup; }
	set internal_groups { type devgroup; }
	set icc_off_groups { type devgroup; }
	set same_group { type devgroup . devgroup; }
	set masq_subnets6 { type ipv6_addr; flags interval; }
	map dnat6_port { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; flags interval; }
	map dnat6_addr { type ipv6_addr . inet_proto . inet_service : ipv6_addr; flags interval; }
	map dnat6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }
	set direct_bridges { type ipv4_addr . ifname; flags interval; }
	set direct_subnets { type ipv4_addr; flags interval; }
	set direct_isolated { type ipv4_addr; flags interval; }
	set direct_internal { type ipv4_addr; flags interval; }
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @dnat_port
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to meta l4proto . th dport map @dnat_any
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_port
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_addr
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @dnat6_any
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @dnat_port
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr
		fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to meta l4proto . th dport map @dnat_any
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_port
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_addr
		fib daddr type local meta l4proto { tcp, udp, sctp } ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @dnat6_any
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr @masq_subnets ip daddr != @masq_subnets masquerade
		ct status dnat ip saddr 127.0.0.0/8 masquerade
		ct status dnat ip saddr @masq_subnets masquerade
		ip6 saddr @masq_subnets6 ip6 daddr != @masq_subnets6 masquerade
		ct status dnat ip6 saddr @masq_subnets6 masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr . iifname @direct_bridges oifname != @bridges accept
		ip saddr . oifname @direct_bridges iifname != @bridges accept
		ip daddr @direct_internal oifname != @bridges drop
		ip saddr @direct_internal iifname != @bridges drop
		iifname @internal iifname . oifname != @same_bridge drop
		oifname @internal iifname . oifname != @same_bridge drop
		iifgroup @internal_groups iifgroup . oifgroup != @same_group drop
		oifgroup @internal_groups iifgroup . oifgroup != @same_group drop
		ct status dnat accept
		iifname @isolated oifname @bridges iifname . oifname != @same_bridge drop
		oifname @isolated iifname @bridges iifname . oifname != @same_bridge drop
		iifgroup @isolated_groups oifgroup @groups iifgroup . oifgroup != @same_group drop
		oifgroup @isolated_groups iifgroup @groups iifgroup . oifgroup != @same_group drop
		iifgroup @isolated_groups oifname @bridges drop
		oifgroup @isolated_groups iifname @bridges drop
		iifname @isolated oifgroup @groups drop
		oifname @isolated iifgroup @groups drop
		ip daddr @direct_isolated iifname @bridges oifname != @bridges drop
		ip daddr @direct_subnets iifname @isolated oifname != @bridges drop
		ip daddr @direct_subnets iifgroup @isolated_groups drop
		ip daddr @direct_isolated iifgroup @groups drop
		ip saddr @direct_isolated oifname @bridges iifname != @bridges drop
		ip saddr @direct_subnets oifname @isolated iifname != @bridges drop
		ip saddr @direct_subnets oifgroup @isolated_groups drop
		ip saddr @direct_isolated oifgroup @groups drop
		iifgroup @icc_off_groups iifgroup . oifgroup @same_group drop
	}
}
";

/// `nft list table inet ocinet` without the elements (which depend on the containers).
fn listing(host: &Host) -> String {
    host.sh_ok("nft list table inet ocinet")
        .lines()
        .filter(|l| !l.trim_start().starts_with("elements = "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Loads `ruleset` into `host` with `nft -f`.
fn load(host: &Host, ruleset: &str) {
    let path = host.config_dir().join("ruleset.nft");
    std::fs::create_dir_all(host.config_dir()).unwrap();
    std::fs::write(&path, ruleset).unwrap();
    host.sh_ok(&format!("nft -f {}", path.display()));
}

#[test]
fn the_table_is_what_nft_makes_of_the_reference_and_loads_back() {
    let host = Host::new("table");
    let web = host.start(Runtime::Runc, "web", &[("io.ocinet.ports", "8080:80")]);
    let made = listing(&host);
    web.delete().unwrap();

    let reference = Host::new("table-ref");
    load(&reference, REFERENCE);
    assert_eq!(made, listing(&reference));

    // What `nft list ruleset > file` saves must restore (with the elements it had).
    let restored = Host::new("table-restore");
    load(&restored, &host.sh_ok("nft list ruleset"));
    assert_eq!(listing(&restored), made);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
