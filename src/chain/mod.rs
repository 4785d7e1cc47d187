//! Reading the whitelist from Bitcoin. So far: the BNS wire format. The
//! Electrum follower, header and merkle verification and the regtest chain
//! will join it here.

pub mod bns;
