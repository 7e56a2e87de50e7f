//! A throwaway PostgreSQL cluster of a test's own (initdb, pg_ctl), for what a shared server
//! cannot be put through: a streaming replica made from it (`pg_basebackup -R`), a restart.
//! Stopped and removed when dropped.

use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    dir: PathBuf,
    port: u16,
}

/// The newest installed server's programs (Debian keeps each major version apart).
fn bin(program: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs under /usr/lib/postgresql (./scripts/test installs them)")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|path| {
        path.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("an installed PostgreSQL server (initdb)").join(program)
}

/// PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user.
fn command(program: &str) -> Command {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin(program));
        command
    } else {
        Command::new(bin(program))
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A directory the `postgres` user may own.
fn new_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trail-pg-{}-{}", std::process::id(), super::random_suffix()));
    std::fs::create_dir_all(&dir).expect("a directory for the cluster");
    run(Command::new("chmod").arg("0777").arg(&dir));
    dir
}

impl Cluster {
    /// A new cluster, started, trusting local connections (replication ones too).
    pub fn start() -> Cluster {
        let cluster = Cluster { dir: new_dir(), port: free_port() };
        run(command("initdb").args(["-A", "trust", "-U", "postgres", "-D"]).arg(cluster.data()));
        cluster.pg_ctl("start");
        cluster
    }

    /// A streaming replica of this cluster (`pg_basebackup -R`), started.
    pub fn standby(&self) -> Cluster {
        let standby = Cluster { dir: new_dir(), port: free_port() };
        let port = self.port.to_string();
        run(command("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-R", "-X", "stream", "-c", "fast", "-D"])
            .arg(standby.data()));
        standby.pg_ctl("start");
        standby
    }

    /// `pg_ctl restart -m fast`: every session is ended, and the server comes back.
    pub fn restart_fast(&self) {
        self.pg_ctl("restart");
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    pub fn start_again(&self) {
        self.pg_ctl("start");
    }

    /// The trail's head as this cluster holds it (a replica: as far as it has replayed); `None`
    /// while it cannot say.
    pub async fn chain_head(&self) -> Option<i64> {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(connection);
        client.query_one("SELECT last_id FROM chain_head", &[]).await.ok().map(|row| row.get(0))
    }

    /// Waits (at most 30 s) until this cluster holds the trail through `id`: a replica has
    /// replayed that far.
    pub async fn holds_through(&self, id: i64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.chain_head().await.is_none_or(|head| head < id) {
            assert!(std::time::Instant::now() < deadline, "the cluster did not reach id {id} within 30 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let log = self.dir.join("log");
        run(command("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, action]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = command("pg_ctl").args(["-m", "immediate", "-D"]).arg(self.data()).arg("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
