//! Network namespaces, TUN devices and HTTP inside a namespace, for the testbed. Everything
//! here is created under a per-run name prefix and removed by [`Namespaces`]' drop, so the
//! host's own interfaces are never touched and nothing outlives the run.

use super::router::node_ip;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

/// Runs `ip ARGS`, with its error output in the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this host cannot run a testbed, if it cannot: root, `ip` and `/dev/net/tun` are needed.
pub fn preflight() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the testbed creates network namespaces: run it as root".into());
    }
    Command::new("ip")
        .arg("-V")
        .output()
        .map_err(|e| format!("`ip` (iproute2) is needed: {e}"))?;
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing: the link emulator needs TUN devices".into());
    }
    Ok(())
}

/// Deletes namespaces a testbed that is gone left behind (`rtb<pid>-*` whose process no
/// longer exists: one killed with SIGKILL cannot clean up), saying so.
pub fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix("rtb")
            .and_then(|r| r.split_once('-'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            match ip(&["netns", "del", name]) {
                Ok(()) => tracing::warn!("testbed: removed {name}, left by a testbed that is gone"),
                Err(e) => tracing::warn!("testbed: cannot remove stale {name}: {e}"),
            }
        }
    }
}

/// The run's namespaces, deleted (with their TUN devices and anything bound inside) on drop.
#[derive(Debug, Default)]
pub struct Namespaces {
    pub names: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.names.drain(..) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                tracing::warn!("testbed: cannot remove {ns}: {e}");
            }
        }
    }
}

impl Namespaces {
    /// Creates namespace `name` with loopback up and a TUN device `tb0` holding node `i`'s
    /// address; returns the device's descriptor (non-blocking), which the router owns.
    pub fn add_node(&mut self, name: &str, i: usize) -> Result<OwnedFd, String> {
        ip(&["netns", "add", name])?;
        self.names.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        let fd = in_netns(name, open_tun)??;
        let addr = format!("{}/16", node_ip(i));
        ip(&["-n", name, "addr", "add", &addr, "dev", "tb0"])?;
        ip(&["-n", name, "link", "set", "tb0", "up"])?;
        Ok(fd)
    }
}

/// Runs `f` on a thread that has entered namespace `name`; sockets and devices it opens
/// belong to that namespace, wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let path = format!("/var/run/netns/{name}");
    let ns = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on a namespace file we hold open; it affects only this thread, which
        // ends after `f`.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot enter the namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(f())
    })
    .join()
    .map_err(|_| "namespace thread panicked".to_string())?
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens TUN device `tb0` (IPv4 packets without the packet-information header).
fn open_tun() -> Result<OwnedFd, String> {
    let path = c"/dev/net/tun";
    // SAFETY: open with a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(format!(
            "cannot open /dev/net/tun: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a fresh descriptor we own from here on.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..3].copy_from_slice(b"tb0");
    // SAFETY: TUNSETIFF reads and writes an ifreq-sized struct we own.
    if unsafe { libc::ioctl(owned.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(format!(
            "cannot create the TUN device: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(owned)
}

/// A minimal HTTP/1.1 request from inside namespace `ns` to `addr`: (status, body).
pub fn http_in(
    ns: &str,
    addr: SocketAddr,
    method: &'static str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let path = path.to_string();
    in_netns(ns, move || http(addr, method, &path, &body))?
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let io = |e: std::io::Error| format!("{method} {path}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(io)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{method} {path}: no HTTP header in the answer"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: no status code"))?;
    let mut body = resp[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((code, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let Ok(n) = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16) else {
            break;
        };
        let Some(end) = (eol + 2).checked_add(n).filter(|&e| e <= b.len()) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..end]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
    out
}
