//! Real peers, for the forwarding tests and the benchmark: rsyslog and FreeRADIUS in the
//! foreground, each in its own temporary directory on a free loopback port, stopped when dropped.
//! A missing program is an error naming the package (the test command installs them); nothing
//! is skipped. Built only with the `peers` feature.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is not installed; run ./scripts/test, which installs rsyslog, rsyslog-openssl, freeradius and freeradius-utils"
    )
}

pub fn free_port() -> u16 {
    // A port free for both TCP and UDP at the time of asking.
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} failed");
}

fn wait_for_tcp(port: u16, child: &mut Child, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the peer exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the peer never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SyslogKind {
    Plain,
    Tls,
    /// TLS that demands a client certificate signed by the same CA (`client.pem`, `client.key`).
    MutualTls,
}

pub struct Rsyslog {
    pub dir: tempfile::TempDir,
    pub port: u16,
    config: String,
    child: Option<Child>,
}

/// The parsed fields rsyslog writes for every message: msg comes last, since it may hold
/// anything.
pub const PARSED: &str = "pri=%pri% app=%app-name% procid=%procid% msgid=%msgid% time=%timereported:::date-rfc3339% sd=%structured-data% msg=%msg%\\n";

impl Rsyslog {
    /// rsyslog writing every message it receives twice: raw (`out.log`) and parsed
    /// (`parsed.log`, see [`PARSED`]).
    pub fn start(kind: SyslogKind) -> Rsyslog {
        Rsyslog::with_config(move |dir, port| capture_config(kind, dir, port))
    }

    /// rsyslog with a configuration of the caller's, made from its directory and port.
    pub fn with_config(config: impl FnOnce(&Path, u16) -> String) -> Rsyslog {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let config = config(dir.path(), port);
        let mut rsyslog = Rsyslog { dir, port, config, child: None };
        rsyslog.restart();
        rsyslog
    }

    pub fn restart(&mut self) {
        let dir = self.dir.path();
        std::fs::write(dir.join("rs.conf"), &self.config).unwrap();
        let log = dir.join("rsyslogd.log");
        let mut child = Command::new(program("rsyslogd"))
            .args(["-C", "-n", "-i"])
            .arg(dir.join("pid"))
            .arg("-f")
            .arg(dir.join("rs.conf"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        wait_for_tcp(self.port, &mut child, &log);
        self.child = Some(child);
    }

    /// Stops rsyslog cleanly (it writes out what it received).
    pub fn stop(&mut self) {
        self.stop_with("TERM");
    }

    /// Stops rsyslog reading (SIGSTOP): writes still succeed, into its socket buffer.
    pub fn freeze(&self) {
        signal(self.child.as_ref().unwrap(), "STOP");
    }

    /// Kills rsyslog at once: what it had read but not yet written is gone, and so is what
    /// waited in its socket buffer.
    pub fn kill(&mut self) {
        self.stop_with("KILL");
    }

    fn stop_with(&mut self, signal_name: &str) {
        if let Some(mut child) = self.child.take() {
            signal(&child, signal_name);
            let _ = child.wait();
        }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn parsed(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("parsed.log")).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn capture_config(kind: SyslogKind, dir: &Path, port: u16) -> String {
    let inputs = match kind {
        SyslogKind::Plain => format!(
            "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\nmodule(load=\"imudp\")\nmodule(load=\"imtcp\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"cap\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"cap\")\n",
            dir = dir.display()
        ),
        SyslogKind::Tls | SyslogKind::MutualTls => {
            make_certificates(dir);
            let auth = if kind == SyslogKind::Tls { "anon" } else { "x509/certvalid" };
            format!(
                "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\"\n DefaultNetstreamDriverCAFile=\"{dir}/ca.pem\"\n \
                 DefaultNetstreamDriverCertFile=\"{dir}/server.pem\"\n DefaultNetstreamDriverKeyFile=\"{dir}/server.key\")\n\
                 module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"{auth}\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"cap\")\n",
                dir = dir.display()
            )
        }
    };
    format!(
        "{inputs}template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         template(name=\"parsed\" type=\"string\" string=\"{PARSED}\")\n\
         ruleset(name=\"cap\") {{ action(type=\"omfile\" file=\"{dir}/out.log\" template=\"raw\") \
         action(type=\"omfile\" file=\"{dir}/parsed.log\" template=\"parsed\") }}\n",
        dir = dir.display()
    )
}

/// A throwaway CA and a server certificate for `localhost` and 127.0.0.1, made with openssl.
pub fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new(program("openssl")).args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let key_and_csr = |name: &str, subject: &str| {
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
    };
    let sign = |name: &str, extensions: &str| {
        let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            extensions,
        ]);
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Trail test CA",
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    key_and_csr("server", "/CN=localhost");
    sign("server", "server.ext");
    key_and_csr("client", "/CN=trail");
    sign("client", "client.ext");
}

pub struct FreeRadius {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `-X`: every request in the log (tests); without it, fast (the benchmark).
    debug: bool,
    child: Option<Child>,
}

impl FreeRadius {
    /// FreeRADIUS in debug mode, logging every request.
    pub fn start() -> FreeRadius {
        FreeRadius::start_as(true)
    }

    /// FreeRADIUS in the foreground without debug output, as it runs in production.
    pub fn start_quiet() -> FreeRadius {
        FreeRadius::start_as(false)
    }

    fn start_as(debug: bool) -> FreeRadius {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let template = include_str!("peers/freeradius-radiusd.conf");
        let config = template.replace("@DIR@", &dir.path().display().to_string()).replace("18131", &port.to_string());
        std::fs::create_dir_all(dir.path().join("log/radacct")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("radiusd.conf"), config).unwrap();
        // As the shipped dictionary tells operators: beside FreeRADIUS's `dictionary`, included.
        std::fs::write(dir.path().join("dictionary.trail"), crate::radius::DICTIONARY).unwrap();
        std::fs::write(dir.path().join("dictionary"), "$INCLUDE dictionary.trail\n").unwrap();
        let mut radius = FreeRadius { dir, port, debug, child: None };
        radius.restart();
        radius
    }

    pub fn restart(&mut self) {
        let dir = self.dir.path();
        let log = dir.join("radiusd.log");
        let ready = || std::fs::read_to_string(&log).unwrap_or_default().matches("Ready to process requests").count();
        let before = ready();
        let child = Command::new(program("freeradius"))
            .arg(if self.debug { "-X" } else { "-f" })
            .arg("-d")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::options().create(true).append(true).open(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while ready() == before {
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                panic!("freeradius exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(20), "freeradius never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops answering (SIGSTOP) until [`FreeRadius::resume`].
    pub fn pause(&self) {
        signal(self.child.as_ref().unwrap(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.as_ref().unwrap(), "CONT");
    }

    /// The detail file's records, each a list of (attribute, value) with quotes removed.
    pub fn records(&self) -> Vec<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.dir.path().join("log/radacct/detail")).unwrap_or_default();
        text.split("\n\n")
            .filter(|block| !block.trim().is_empty())
            .map(|block| {
                block
                    .lines()
                    .skip(1)
                    .filter_map(|line| line.trim().split_once(" = "))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect()
            })
            .collect()
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
