//! A bus worker driven one step at a time: the test, not a clock, decides
//! when the worker acts, and each step says what it did and what else was
//! due. Two A1000s share an IEC 62056-21 line; one has days of load
//! profile to catch up on, the other is read every few hundred milliseconds.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{TestDb, device_config, iec_meter, quick_iec_line, serve_iec_tcp};
use chrono::{DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;
use ohmnibus::device::profile::{Profile, RegisterGroup};
use ohmnibus::device::registry::ProfileSet;
use ohmnibus::domain::clock::Clock;
use ohmnibus::domain::ids::{BusId, DeviceId};
use ohmnibus::domain::transport::Transport;
use ohmnibus::poll::command::BusCommand;
use ohmnibus::poll::context::{DeviceConfig, WorkerServices};
use ohmnibus::poll::outbox::spawn_outbox;
use ohmnibus::poll::stats::PollStats;
use ohmnibus::poll::worker::{BusWorker, Stepped, Work};
use ohmnibus::sim::iec62056::IecKind;
use tokio::sync::{mpsc, watch};

const CATCHING_UP: DeviceId = DeviceId(1);
const BUSY: DeviceId = DeviceId(2);
const ASKED: DeviceId = DeviceId(3);
const ENERGY: Work = Work::Read(RegisterGroup::Energy);

fn a1000(id: DeviceId, iec_address: &str, profile: Arc<Profile>, energy: Duration) -> DeviceConfig {
    DeviceConfig {
        address: 0,
        iec_address: Some(iec_address.to_owned()),
        energy,
        ..device_config(id, &format!("A1000 {iec_address}"), profile)
    }
}

#[tokio::test]
async fn a_load_profile_being_caught_up_waits_behind_every_due_readout_and_an_operators_read_goes_first() {
    let db = TestDb::create().await;
    let at = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let first = iec_meter(IecKind::A1000, 7, "11111111", at);
    let second = iec_meter(IecKind::A1000, 8, "22222222", at);
    let third = iec_meter(IecKind::A1000, 9, "33333333", at);
    let (port, _line) = serve_iec_tcp(quick_iec_line(vec![first, second, third], Clock::System)).await;

    // One day per load-profile read, six days deep: six reads to catch up
    // (each a programming-mode session of about a second, the protocol's
    // turnaround times included).
    let profiles = Arc::new(ProfileSet::builtin());
    let a1000_profile = profiles.get("a1000").unwrap();
    let mut catching_up = (*a1000_profile).clone();
    let settings = catching_up.iec62056.as_mut().unwrap().load_profile.as_mut().unwrap();
    settings.chunk_days = 1;
    settings.backfill_days = 6;
    // The busy meter's load profile is not read: only its readouts matter.
    let mut busy = (*a1000_profile).clone();
    busy.iec62056.as_mut().unwrap().load_profile = None;
    let devices = vec![
        a1000(
            CATCHING_UP,
            "11111111",
            Arc::new(catching_up),
            Duration::from_secs(3600),
        ),
        a1000(BUSY, "22222222", Arc::new(busy.clone()), Duration::from_millis(200)),
        a1000(ASKED, "33333333", Arc::new(busy), Duration::from_secs(3600)),
    ];

    let stats = Arc::new(PollStats::default());
    let (outbox, _outbox_task) = spawn_outbox(db.pool.clone(), Arc::clone(&stats), Clock::System, Default::default());
    let services = WorkerServices {
        pool: db.pool.clone(),
        outbox,
        stats,
        profiles,
        request_timeout: Duration::from_secs(2),
        iec_exchange_deadline: ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        clock_drift_threshold: Duration::from_secs(30),
        clock: Clock::System,
        field_programming: Default::default(),
    };
    let (_devices, devices_rx) = watch::channel(devices);
    let (jobs, inbox) = mpsc::channel(16);
    let transport = Transport::Iec62056Tcp {
        host: "127.0.0.1".to_owned(),
        port,
    };
    let mut worker = BusWorker::start(BusId(1), transport, devices_rx, inbox, services).await;

    let mut chunks = 0;
    let mut checked: i64 = 0;
    let mut asked_read = false;
    // Bounded, however slow the machine: six load-profile reads, and the
    // busy meter's readouts between them.
    for _ in 0..1_000 {
        let (device, work, due) = scheduled(worker.step().await);
        if work == Work::LoadProfile {
            let waiting: Vec<_> = due.iter().filter(|(_, work)| *work != Work::LoadProfile).collect();
            assert!(
                waiting.is_empty(),
                "a load-profile read of device {device} went before the due register reads {waiting:?}"
            );
        }
        if (device, work) == (CATCHING_UP, Work::LoadProfile) {
            chunks += 1;
        }
        // The third meter's first scheduled readout (its only one in the
        // test) is out of the way.
        asked_read |= (device, work) == (ASKED, ENERGY);
        if chunks == 6 {
            break;
        }
        // The busy meter was just read and the load profile waits: an
        // operator's read of a third meter goes first, and takes longer than
        // the busy meter's period. After it, the load profile has waited
        // longer than the busy meter's next readout, which still goes first.
        if asked_read
            && (device, work) == (BUSY, ENERGY)
            && due.contains(&(CATCHING_UP, Work::LoadProfile))
            && checked < 3
        {
            jobs.send(BusCommand::ReadNow {
                job: checked,
                device: ASKED,
            })
            .await
            .unwrap();
            assert_eq!(worker.step().await, Some(Stepped::Queued));
            assert_eq!(worker.step().await, Some(Stepped::ReadNow(ASKED)));
            let (device, work, due) = scheduled(worker.step().await);
            assert_eq!(
                (device, work),
                (BUSY, ENERGY),
                "after the operator's read, with {due:?} also due"
            );
            assert!(due.contains(&(CATCHING_UP, Work::LoadProfile)), "{due:?}");
            checked += 1;
        }
    }
    assert_eq!(chunks, 6, "six days caught up one day at a time");
    assert_eq!(
        checked, 3,
        "the busy meter's readouts were never due while the load profile waited"
    );
}

/// The scheduled read a step did.
fn scheduled(stepped: Option<Stepped>) -> (DeviceId, Work, Vec<(DeviceId, Work)>) {
    match stepped {
        Some(Stepped::Read { device, work, due }) => (device, work, due),
        other => panic!("only scheduled reads were due, the worker did {other:?}"),
    }
}

#[tokio::test]
async fn a_th40c_polled_over_modbus_has_no_load_profile_planned() {
    use ohmnibus::sim::bus::SimBus;
    use ohmnibus::sim::device::SimDevice;
    use ohmnibus::sim::meter::Th40cModel;
    use ohmnibus::sim::server::{TcpFraming, spawn_tcp};

    let db = TestDb::create().await;
    let profiles = Arc::new(ProfileSet::builtin());
    let th40c = profiles.get("th40c").unwrap();
    // Its profile keeps a load profile, read over IEC 62056-21 only.
    assert!(th40c.iec62056.as_ref().unwrap().load_profile.is_some());
    let model = Th40cModel::new(1, Tz::UTC, Utc::now());
    let (stop, shutdown) = ohmnibus::shutdown::channel();
    let device = SimDevice::new(Arc::clone(&th40c), 1, model, Clock::System);
    let (line, _) = spawn_tcp(
        SimBus::new(vec![device]),
        "127.0.0.1:0",
        TcpFraming::ModbusTcp,
        shutdown,
    )
    .await
    .unwrap();
    let mut config = a1000(DeviceId(1), "", Arc::clone(&th40c), Duration::from_secs(3600));
    config.address = 1;
    config.iec_address = None;
    let stats = Arc::new(PollStats::default());
    let (outbox, _outbox_task) = spawn_outbox(db.pool.clone(), Arc::clone(&stats), Clock::System, Default::default());
    let services = WorkerServices {
        pool: db.pool.clone(),
        outbox,
        stats,
        profiles,
        request_timeout: Duration::from_secs(2),
        iec_exchange_deadline: ohmnibus::config::DEFAULT_IEC_EXCHANGE_DEADLINE,
        clock_drift_threshold: Duration::from_secs(30),
        clock: Clock::System,
        field_programming: Default::default(),
    };
    let (_devices, devices_rx) = watch::channel(vec![config]);
    let (_jobs, inbox) = mpsc::channel::<BusCommand>(16);
    let transport = Transport::ModbusTcp {
        host: "127.0.0.1".to_owned(),
        port: line.port(),
    };
    let mut worker = BusWorker::start(BusId(1), transport, devices_rx, inbox, services).await;
    // The first reads of each register group: none is a load profile, and
    // none was ever due.
    for _ in 0..6 {
        let (_, work, due) = scheduled(worker.step().await);
        assert_ne!(work, Work::LoadProfile);
        assert!(due.iter().all(|(_, work)| *work != Work::LoadProfile), "{due:?}");
    }
    drop(stop);
}
