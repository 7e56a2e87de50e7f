//! Forwarding against real peers: rsyslog and FreeRADIUS, started by the tests.

mod support;
mod syslog;
