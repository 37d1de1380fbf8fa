//! The JSON type of every configuration field the plugin reads, nested ones included. A field
//! of the wrong type is a decoding failure (the specification's code 6) whose message names
//! the field and the type it must be, as the reference plugins refuse it when they unmarshal;
//! without this, `as_str`-style reads would take a wrong type for "absent". Values (ranges,
//! addresses, names) are checked where they are read: `config.rs`, `Network::from_json`.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{code, CniError, Result};

/// What a field must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    String,
    Bool,
    /// A whole number of either sign: Go's `int`; its range is the reader's check.
    Integer,
    /// A whole number from 0 to this maximum: the unsigned type the network file is read into.
    Unsigned(u64),
    List(&'static Shape),
    /// An object whose listed keys have their shapes; other keys are not read here.
    Object(&'static [Key]),
    /// An object whose values all have this shape.
    MapOf(&'static Shape),
    /// The top level's `dns`: the network's boolean or CNI's DNS settings.
    BoolOrObject(&'static [Key]),
}

/// One key of an object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    shape: Shape,
    /// Whether `null` stands for absent there, as Go's decoder and serde's `Option` read it.
    nullable: bool,
    /// Said after the type in an error: an example, or what each type means.
    hint: &'static str,
}

const fn key(name: &'static str, shape: Shape) -> Key {
    Key {
        name,
        shape,
        nullable: true,
        hint: "",
    }
}

/// A key the network file's parser reads into a non-optional field.
const fn not_null(name: &'static str, shape: Shape) -> Key {
    Key {
        nullable: false,
        ..key(name, shape)
    }
}

const fn hinted(name: &'static str, shape: Shape, hint: &'static str) -> Key {
    Key {
        hint,
        ..key(name, shape)
    }
}

const STRING: Shape = Shape::String;
const STRINGS: Shape = Shape::List(&STRING);

/// CNI's DNS settings (the configuration's `dns`, a result's `dns`).
const DNS: &[Key] = &[
    key("nameservers", STRINGS),
    key("domain", STRING),
    key("search", STRINGS),
    key("options", STRINGS),
];

/// `runtimeConfig.portMappings` entries, as the portmap plugin reads them.
const PORT_MAPPING: Shape = Shape::Object(&[
    key("hostPort", Shape::Integer),
    key("containerPort", Shape::Integer),
    key("protocol", STRING),
    key("hostIP", STRING),
]);

/// The capabilities' arguments this plugin takes (`portMappings`, `ips`, `mac`, `aliases`:
/// each network's names for the container).
const RUNTIME_CONFIG: &[Key] = &[
    key("portMappings", Shape::List(&PORT_MAPPING)),
    key("ips", STRINGS),
    key("mac", STRING),
    key("aliases", Shape::MapOf(&STRINGS)),
];

/// A result's entries (the previous plugin's, carried over into ocinet's).
const INTERFACE: Shape = Shape::Object(&[
    key("name", STRING),
    key("mac", STRING),
    key("mtu", Shape::Integer),
    key("sandbox", STRING),
    key("socketPath", STRING),
    key("pciID", STRING),
]);
const IP: Shape = Shape::Object(&[
    key("address", STRING),
    key("gateway", STRING),
    key("interface", Shape::Integer),
    key("version", STRING),
]);
const ROUTE: Shape = Shape::Object(&[
    key("dst", STRING),
    key("gw", STRING),
    key("mtu", Shape::Integer),
    key("advmss", Shape::Integer),
    key("priority", Shape::Integer),
    key("table", Shape::Integer),
    key("scope", Shape::Integer),
]);
const PREV_RESULT: &[Key] = &[
    key("cniVersion", STRING),
    key("interfaces", Shape::List(&INTERFACE)),
    key("ips", Shape::List(&IP)),
    key("routes", Shape::List(&ROUTE)),
    key("dns", Shape::Object(DNS)),
];

const ATTACHMENT: Shape = Shape::Object(&[key("containerID", STRING), key("ifname", STRING)]);

/// A network file's `subnets` entries and `etcd` (ocinet/src/network/file.rs).
const SUBNET: Shape = Shape::Object(&[not_null("subnet", STRING), key("gateway", STRING)]);
const ETCD: &[Key] = &[
    not_null("endpoints", STRINGS),
    key("ca", STRING),
    key("cert", STRING),
    key("key", STRING),
];

/// The reference bridge plugin's `ipam` of type host-local, as that plugin reads it.
const IPAM: &[Key] = &[
    key("type", STRING),
    key(
        "ranges",
        Shape::List(&Shape::List(&Shape::Object(&[
            key("subnet", STRING),
            key("gateway", STRING),
            key("rangeStart", STRING),
            key("rangeEnd", STRING),
        ]))),
    ),
    key(
        "routes",
        Shape::List(&Shape::Object(&[key("dst", STRING), key("gw", STRING)])),
    ),
];

/// Every top-level key the plugin takes: CNI's, ocinet's `root` and `configDir`, a network
/// file's fields (`ocinet::network::FIELDS`; `dns` is both the network's and CNI's) and the
/// reference bridge plugin's (`bridge_plugin::KEYS`; its `bridge` and `mtu` are ocinet's).
pub(crate) const TOP: &[Key] = &[
    hinted("cniVersion", STRING, " such as \"1.0.0\""),
    key("name", STRING),
    key("type", STRING),
    key("args", Shape::Object(&[])),
    hinted(
        "capabilities",
        Shape::MapOf(&Shape::Bool),
        " such as {\"portMappings\": true}",
    ),
    key("runtimeConfig", Shape::Object(RUNTIME_CONFIG)),
    key("prevResult", Shape::Object(PREV_RESULT)),
    key("dns", Shape::BoolOrObject(DNS)),
    key("cni.dev/valid-attachments", Shape::List(&ATTACHMENT)),
    key("root", STRING),
    key("configDir", STRING),
    key("driver", STRING),
    key("bridge", STRING),
    not_null("subnets", Shape::List(&SUBNET)),
    key("masquerade", Shape::Bool),
    key("mtu", Shape::Unsigned(u32::MAX as u64)),
    key("etcd", Shape::Object(ETCD)),
    key("vni", Shape::Unsigned(u32::MAX as u64)),
    key("port", Shape::Unsigned(u16::MAX as u64)),
    key("block", Shape::Unsigned(u8::MAX as u64)),
    key("ttl", Shape::Unsigned(u32::MAX as u64)),
    key("underlay", STRING),
    key("direct_routing", Shape::Bool),
    key("internal", Shape::Bool),
    key("isolate", Shape::Bool),
    key("icc", Shape::Bool),
    key("isGateway", Shape::Bool),
    key("isDefaultGateway", Shape::Bool),
    key("ipMasq", Shape::Bool),
    key("hairpinMode", Shape::Bool),
    key("promiscMode", Shape::Bool),
    key("vlan", Shape::Integer),
    key("ipam", Shape::Object(IPAM)),
];

/// Checks the top-level keys `names` of the configuration (those absent pass).
pub(crate) fn check_keys(config: &Map<String, Value>, names: &[&str]) -> Result<()> {
    for top in TOP.iter().filter(|k| names.contains(&k.name)) {
        check_key(Path::Root, config, top)?;
    }
    Ok(())
}

/// Checks every top-level key the plugin takes; others are `check_strict`'s.
pub(crate) fn check_all(config: &Map<String, Value>) -> Result<()> {
    for top in TOP {
        check_key(Path::Root, config, top)?;
    }
    Ok(())
}

/// Where a value is, built only when an error names it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn check_key(at: Path<'_>, object: &Map<String, Value>, key: &Key) -> Result<()> {
    match object.get(key.name) {
        None => Ok(()),
        Some(Value::Null) if key.nullable => Ok(()),
        Some(value) => check(Path::Key(&at, key.name), value, key.shape, key.hint),
    }
}

fn check(at: Path<'_>, value: &Value, shape: Shape, hint: &str) -> Result<()> {
    let fits = match (shape, value) {
        (Shape::String, Value::String(_)) | (Shape::Bool, Value::Bool(_)) => true,
        (Shape::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Shape::Unsigned(max), Value::Number(n)) => n.as_u64().is_some_and(|n| n <= max),
        (Shape::List(entry), Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                check(Path::Index(&at, i), item, *entry, "")?;
            }
            true
        }
        (Shape::Object(keys), Value::Object(object))
        | (Shape::BoolOrObject(keys), Value::Object(object)) => {
            for key in keys {
                check_key(at, object, key)?;
            }
            true
        }
        (Shape::BoolOrObject(_), Value::Bool(_)) => true,
        (Shape::MapOf(inner), Value::Object(object)) => {
            for (name, item) in object {
                check(Path::Key(&at, name), item, *inner, "")?;
            }
            true
        }
        _ => false,
    };
    if fits {
        return Ok(());
    }
    Err(CniError::new(
        code::DECODING,
        format!(
            "\"{at}\" must be {}{hint}, not {}",
            expected(shape),
            found(value)
        ),
    ))
}

fn expected(shape: Shape) -> String {
    match shape {
        Shape::String => "a string".into(),
        Shape::Bool => "true or false".into(),
        Shape::Integer => "a whole number".into(),
        Shape::Unsigned(max) => format!("a whole number from 0 to {max}"),
        Shape::List(&Shape::String) => "a list of strings".into(),
        Shape::List(_) => "a list".into(),
        Shape::Object(_) | Shape::MapOf(_) => "an object".into(),
        Shape::BoolOrObject(_) => {
            "true or false (the network's name service) or an object (CNI's DNS settings)".into()
        }
    }
}

/// What was given instead: a scalar as it is (a long string shortened), a list or an object
/// by its kind only.
fn found(value: &Value) -> String {
    const SHOWN: usize = 40;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > SHOWN => {
            let start: String = s.chars().take(SHOWN).collect();
            format!("the string {:?}...", start)
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests;
