//! Forwarding against real peers: rsyslog and FreeRADIUS, started by the tests.

mod radius;
mod support;
mod syslog;
