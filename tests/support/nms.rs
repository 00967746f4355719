//! node-media-server (npm, a real HTTP-FLV origin that is not ours) on 127.0.0.1 with ephemeral
//! ports: RTMP in, HTTP-FLV out at `/live/<stream>.flv`. Installed by `scripts/install-peers.sh`
//! into [`NMS_DIR`]; the launcher pins every listener to 127.0.0.1 (node-media-server itself
//! would listen on every interface).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::proc::{die_with_parent, terminate};
use super::{free_tcp_port, require_program, tail_file, wait_until, TestDir};

pub const NMS_DIR: &str = "/opt/srs-proxy-test-peers";

pub struct NodeMediaServer {
    pub rtmp_port: u16,
    pub http_port: u16,
    child: Option<Child>,
    dir: TestDir,
}

impl NodeMediaServer {
    pub fn start() -> NodeMediaServer {
        require_program("node");
        let module = Path::new(NMS_DIR).join("node_modules/node-media-server");
        assert!(
            module.is_dir(),
            "{} is missing: run scripts/install-peers.sh (`make test` does)",
            module.display()
        );
        let dir = TestDir::new("nms");
        let rtmp_port = free_tcp_port();
        let http_port = free_tcp_port();
        let script = format!(
            "const net = require('net');\n\
             const listen = net.Server.prototype.listen;\n\
             net.Server.prototype.listen = function (port, ...rest) {{\n\
               if (typeof port === 'number') {{ return listen.call(this, port, '127.0.0.1', ...rest.filter(a => typeof a === 'function')); }}\n\
               return listen.call(this, port, ...rest);\n\
             }};\n\
             const NodeMediaServer = require({module:?});\n\
             new NodeMediaServer({{ logType: 2,\n\
               rtmp: {{ port: {rtmp_port}, chunk_size: 60000, gop_cache: true, ping: 30, ping_timeout: 60 }},\n\
               http: {{ port: {http_port}, allow_origin: '*', mediaroot: {media:?} }} }}).run();\n",
            module = module.display().to_string(),
            media = dir.path().display().to_string(),
        );
        std::fs::write(dir.path().join("nms.js"), script).expect("write nms.js");
        let mut cmd = Command::new("node");
        cmd.arg(dir.path().join("nms.js"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("nms.log")).expect("nms.log"))
            .stderr(std::fs::File::create(dir.path().join("nms.err")).expect("nms.err"));
        let child = die_with_parent(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node-media-server: {e}"));
        let nms = NodeMediaServer {
            rtmp_port,
            http_port,
            child: Some(child),
            dir,
        };
        wait_until(Duration::from_secs(15), "node-media-server ports", || {
            [rtmp_port, http_port].iter().all(|p| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], *p)),
                    Duration::from_millis(200),
                )
                .is_ok()
            })
        });
        nms
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    /// The SRS heartbeat JSON that registers this origin under `ids`.
    pub fn register_body(&self, ids: &super::OriginIds) -> String {
        serde_json::json!({
            "device_id": ids.device_id,
            "ip": "127.0.0.1",
            "server": ids.server,
            "service": ids.service,
            "pid": ids.pid,
            "rtmp": [self.rtmp_port.to_string()],
            "http": [self.http_port.to_string()],
        })
        .to_string()
    }
}

impl Drop for NodeMediaServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(3));
        }
        if std::thread::panicking() {
            eprintln!(
                "[harness] node-media-server log tail:\n{}\n{}",
                tail_file(&self.dir.path().join("nms.log"), 20),
                tail_file(&self.dir.path().join("nms.err"), 20)
            );
        }
    }
}
