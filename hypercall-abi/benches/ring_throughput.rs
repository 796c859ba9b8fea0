//! Ring throughput on the host: a blkif front/back ring pair on two threads over one shared
//! page, with and without Xen's notify avoidance, printing requests per second and
//! notifications per request.
//!
//! An event channel is modelled as a pending flag plus `thread::park`/`unpark` (a sleeping end
//! really sleeps, and a notification really wakes it through the OS, as `EVTCHNOP_send` plus an
//! upcall would). The frontend submits one request per push, like a driver issuing I/Os one by
//! one, so without notify avoidance every request costs a notification.
//!
//! Run: `cargo bench -p hypercall-abi --bench ring_throughput` (or `scripts/ring-bench.sh`);
//! `RING_BENCH_REQUESTS` sets the number of requests per run (default 1,000,000).

use hypercall_abi::io::blkif::{Blkif, BlkifRequest, BlkifResponse, BLKIF_OP_READ};
use hypercall_abi::io::mem::Page;
use hypercall_abi::io::ring::{BackRing, FrontRing};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::Instant;

/// One direction's event channel.
struct Evtchn {
    pending: AtomicBool,
    waiter: OnceLock<Thread>,
    sent: AtomicU64,
    cost_ns: u64,
}

impl Evtchn {
    fn new(cost_ns: u64) -> Self {
        Evtchn { pending: AtomicBool::new(false), waiter: OnceLock::new(), sent: AtomicU64::new(0), cost_ns }
    }
    fn notify(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if self.cost_ns > 0 {
            // Model the sender's cost of EVTCHNOP_send (a hypercall: trap, lookup, maybe IPI).
            let t = Instant::now();
            while (t.elapsed().as_nanos() as u64) < self.cost_ns {
                std::hint::spin_loop();
            }
        }
        self.pending.store(true, Ordering::SeqCst);
        if let Some(t) = self.waiter.get() {
            t.unpark();
        }
    }
    fn wait(&self) {
        let _ = self.waiter.set(thread::current());
        while !self.pending.swap(false, Ordering::SeqCst) {
            thread::park();
        }
    }
}

/// User+system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 Hz ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; indices 11 and 12 after the ')' that ends the command name.
    (tick(11) + tick(12)) / 100.0
}

struct Outcome {
    secs: f64,
    cpu: f64,
    to_back: u64,
    to_front: u64,
}

fn run(n: u64, avoid: bool, cost_ns: u64) -> Outcome {
    let page = Page::new();
    let mut front = FrontRing::<_, Blkif>::new(&page).unwrap();
    let mut back = BackRing::<_, Blkif>::new(&page).unwrap();
    let (to_back, to_front) = (Evtchn::new(cost_ns), Evtchn::new(cost_ns));
    let start = Instant::now();
    let cpu0 = cpu_secs();
    thread::scope(|s| {
        s.spawn(|| {
            let _ = to_back.waiter.set(thread::current());
            let mut done = 0u64;
            while done < n {
                let mut produced = 0;
                while let Some(r) = back.get_request().unwrap() {
                    let rsp = BlkifResponse { id: r.id, operation: r.operation, status: 0 };
                    back.put_response(&rsp).unwrap();
                    produced += 1;
                }
                done += produced;
                if avoid {
                    if back.push_responses_and_check_notify() {
                        to_front.notify();
                    }
                    if done < n && !back.final_check_for_requests().unwrap() {
                        to_back.wait();
                    }
                } else {
                    back.push_responses();
                    if produced > 0 {
                        to_front.notify();
                    }
                    if done < n && back.unconsumed_requests().unwrap() == 0 {
                        to_back.wait();
                    }
                }
            }
        });
        let _ = to_front.waiter.set(thread::current());
        let (mut sent, mut completed) = (0u64, 0u64);
        while completed < n {
            // Submit one request per push while there is room.
            while sent < n && !front.is_full() {
                let req = BlkifRequest {
                    operation: BLKIF_OP_READ,
                    nr_segments: 1,
                    id: sent,
                    sector_number: sent * 8,
                    ..Default::default()
                };
                front.put_request(&req).unwrap();
                sent += 1;
                if avoid {
                    if front.push_requests_and_check_notify() {
                        to_back.notify();
                    }
                } else {
                    front.push_requests();
                    to_back.notify();
                }
            }
            while let Some(r) = front.get_response().unwrap() {
                assert_eq!(r.id, completed, "responses out of order");
                completed += 1;
            }
            if completed < n && (sent == n || front.is_full()) {
                let idle = if avoid {
                    !front.final_check_for_responses().unwrap()
                } else {
                    front.unconsumed_responses().unwrap() == 0
                };
                if idle {
                    to_front.wait();
                }
            }
        }
    });
    Outcome {
        secs: start.elapsed().as_secs_f64(),
        cpu: cpu_secs() - cpu0,
        to_back: to_back.sent.load(Ordering::Relaxed),
        to_front: to_front.sent.load(Ordering::Relaxed),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny smoke.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: u64 = if smoke {
        10_000
    } else {
        std::env::var("RING_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
    };
    println!(
        "ring throughput: blkif ring ({} slots), 1 frontend + 1 backend thread, {n} requests per run, \
         {} CPUs",
        FrontRing::<_, Blkif>::new(&Page::new()).unwrap().size(),
        thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!(
        "{:<28} {:>8} {:>8} {:>12} {:>16} {:>17}",
        "mode", "seconds", "cpu s", "requests/s", "notify->back/req", "notify->front/req"
    );
    let cost: u64 = std::env::var("RING_BENCH_NOTIFY_NS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let runs = [
        ("with notify avoidance", true, 0),
        ("without notify avoidance", false, 0),
        ("with avoidance, +notify cost", true, cost),
        ("without avoid., +notify cost", false, cost),
    ];
    println!(
        "(rows 3-4 add {cost} ns of sender-side cost per notification, modelling an \
         EVTCHNOP_send hypercall; RING_BENCH_NOTIFY_NS changes it)"
    );
    for (name, avoid, cost_ns) in runs {
        let o = run(n, avoid, cost_ns);
        println!(
            "{:<28} {:>8.3} {:>8.2} {:>12.0} {:>16.4} {:>17.4}",
            name,
            o.secs,
            o.cpu,
            n as f64 / o.secs,
            o.to_back as f64 / n as f64,
            o.to_front as f64 / n as f64
        );
    }
}
