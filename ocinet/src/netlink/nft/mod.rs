//! nf_tables over nfnetlink: atomic batches of messages (`message`) and ocinet's table,
//! `inet ocinet`, with its sets, maps and chains (`table`).

pub(crate) mod message;
pub(crate) mod table;
