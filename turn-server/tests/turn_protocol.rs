//! TURN protocol behaviour over loopback: authentication (401 challenge, wrong password,
//! expired REST credentials, stale nonce), Allocate rules (retransmission, 437, 442, quota
//! 486, Refresh), peer filtering (403), channel numbers, and relaying through a UDP echo peer
//! over UDP, TCP and TLS.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use rtc_stun::message::{
    BINDING_REQUEST, CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};
use turn_server::{ClientTransport, TurnConfig, TurnServer};

fn loopback_peers(mut c: TurnConfig) -> TurnConfig {
    c.allow_peer_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    c
}

async fn start(config: TurnConfig) -> TurnServer {
    turn_server::start(config).await.expect("start")
}

fn udp(s: &TurnServer) -> SocketAddr {
    s.local_addr(ClientTransport::Udp).unwrap()
}

fn tcp(s: &TurnServer) -> SocketAddr {
    s.local_addr(ClientTransport::Tcp).unwrap()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn challenge_then_allocate_with_rest_credentials() {
    let server = start(test_config()).await;
    let mut c = TurnClient::udp(udp(&server)).await;

    // Plain STUN Binding works without credentials.
    let b = c.message(BINDING_REQUEST, vec![], false);
    let r = c.transact(&b).await;
    assert_eq!(r.typ.class, CLASS_SUCCESS_RESPONSE);
    assert_eq!(mapped_address(&r), c.local);

    let (user, pass) = creds("PA_alice");
    let relayed = c.allocate(&user, &pass).await.expect("allocate");
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert!((30000..=40000).contains(&relayed.port()));
    assert_eq!(server.stats().allocations, 1);

    // The success carries XOR-MAPPED-ADDRESS and the default LIFETIME; a retransmission
    // (same transaction id) gets the same success, a new Allocate gets 437.
    let m = c.request(METHOD_ALLOCATE, udp_transport(), true);
    let second = c.transact(&m).await;
    assert_eq!(second.typ.class, CLASS_ERROR_RESPONSE);
    assert_eq!(error_code(&second), 437);
    let mut c2 = TurnClient::udp(udp(&server)).await;
    c2.allocate(&user, &pass).await.unwrap();

    // Retransmission: resend the exact bytes of an accepted Allocate.
    let mut c3 = TurnClient::udp(udp(&server)).await;
    c3.allocate(&user, &pass).await.unwrap();
    let _ = c3.refresh(0).await.unwrap();
    eventually("refresh 0 deletes", || server.stats().allocations == 2).await;
    let m = c3.request(METHOD_ALLOCATE, udp_transport(), true);
    let a = c3.transact(&m).await;
    assert_eq!(a.typ.class, CLASS_SUCCESS_RESPONSE);
    assert_eq!(mapped_address(&a), c3.local);
    assert_eq!(lifetime(&a), 600);
    let again = c3.transact(&m).await;
    assert_eq!(
        again.typ.class, CLASS_SUCCESS_RESPONSE,
        "retransmission replays success"
    );
    assert_eq!(relayed_address(&again), relayed_address(&a));
    assert_eq!(server.stats().allocations, 3);

    // Refresh: lifetime capped at 3600 and at least 600; 0 deletes.
    assert_eq!(c.refresh(7200).await.unwrap(), 3600);
    assert_eq!(c.refresh(30).await.unwrap(), 600);
    assert_eq!(c.refresh(0).await.unwrap(), 0);
    eventually("allocation released", || server.stats().allocations == 2).await;
    assert_eq!(
        c.refresh(600).await.unwrap_err(),
        437,
        "no allocation any more"
    );
    assert_eq!(server.stats().allocations_total, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_401_and_never_panics() {
    let server = start(test_config()).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    let (user, _) = creds("PA_bob");
    assert_eq!(
        c.allocate(&user, "not-the-password").await.unwrap_err(),
        401
    );
    // Static password for an unknown user, and a username that is not REST-shaped.
    assert_eq!(c.allocate("mallory", "x").await.unwrap_err(), 401);
    assert!(server.stats().auth_failures >= 2);
    assert_eq!(server.stats().allocations, 0);
    // Other requests without allocation: 401 without credentials, 437 with.
    let m = c.request(METHOD_REFRESH, vec![], false);
    assert_eq!(error_code(&c.transact(&m).await), 401);
    let (user, pass) = creds("PA_bob");
    c.set_credentials(&user, &pass);
    assert_eq!(
        c.authed(METHOD_CREATE_PERMISSION, || vec![peer_attr(
            "8.8.8.8:1".parse().unwrap()
        )])
        .await
        .unwrap_err(),
        437
    );
    server.shutdown().await;
}

#[tokio::test]
async fn expired_rest_credentials_are_401() {
    let server = start(test_config()).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    let (user, pass) =
        turn_server::rest_credentials(SECRET, "PA_old", Duration::from_secs(60), now_unix() - 120);
    assert_eq!(c.allocate(&user, &pass).await.unwrap_err(), 401);
    server.shutdown().await;
}

#[tokio::test]
async fn static_users_are_long_term_credentials() {
    let mut config = test_config();
    config.auth_secret = None;
    config
        .static_users
        .insert("tool".into(), "tool-password".into());
    let server = start(config).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    c.allocate("tool", "tool-password").await.unwrap();
    let mut c = TurnClient::udp(udp(&server)).await;
    assert_eq!(c.allocate("tool", "nope").await.unwrap_err(), 401);
    server.shutdown().await;
}

#[tokio::test]
async fn stale_nonce_gets_438_with_a_new_nonce() {
    let mut config = test_config();
    config.nonce_lifetime = Duration::from_millis(400);
    let server = start(config).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    let (user, pass) = creds("PA_nonce");
    c.allocate(&user, &pass).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // A request with the old nonce gets 438 (checked here by hand), then `authed` retries.
    let m = c.request(METHOD_REFRESH, vec![], true);
    let r = c.transact(&m).await;
    assert_eq!(error_code(&r), 438);
    assert_eq!(c.refresh(600).await.unwrap(), 600);
    server.shutdown().await;
}

#[tokio::test]
async fn allocate_rules() {
    use rtc_stun::attributes::{
        ATTR_DONT_FRAGMENT, ATTR_EVEN_PORT, ATTR_REQUESTED_ADDRESS_FAMILY, ATTR_RESERVATION_TOKEN,
        ATTR_UNKNOWN_ATTRIBUTES,
    };
    let server = start(test_config()).await;
    let (user, pass) = creds("PA_rules");
    let mut c = TurnClient::udp(udp(&server)).await;
    c.challenge(&user, &pass).await;
    // Nothing is allocated by refused requests.
    assert_eq!(
        c.authed(METHOD_ALLOCATE, || transport(6))
            .await
            .unwrap_err(),
        442
    );
    assert_eq!(c.authed(METHOD_ALLOCATE, Vec::new).await.unwrap_err(), 400);
    c.extra = vec![(ATTR_DONT_FRAGMENT, vec![])];
    let m = c.request(METHOD_ALLOCATE, udp_transport(), true);
    let r = c.transact(&m).await;
    assert_eq!(error_code(&r), 420);
    assert_eq!(
        r.get(ATTR_UNKNOWN_ATTRIBUTES).unwrap(),
        ATTR_DONT_FRAGMENT.0.to_be_bytes().to_vec()
    );
    c.extra = vec![(ATTR_REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0])];
    assert_eq!(
        c.authed(METHOD_ALLOCATE, udp_transport).await.unwrap_err(),
        440
    );
    c.extra = vec![
        (ATTR_EVEN_PORT, vec![0x80]),
        (ATTR_RESERVATION_TOKEN, vec![1; 8]),
    ];
    assert_eq!(
        c.authed(METHOD_ALLOCATE, udp_transport).await.unwrap_err(),
        400
    );
    c.extra = vec![(ATTR_RESERVATION_TOKEN, vec![1; 8])];
    assert_eq!(
        c.authed(METHOD_ALLOCATE, udp_transport).await.unwrap_err(),
        508
    );
    assert_eq!(server.stats().allocations, 0);

    // EVEN-PORT with R: an even port and a token for the next one, which another Allocate
    // claims (what coturn's uclient does for RTP/RTCP pairs).
    c.extra = vec![(ATTR_EVEN_PORT, vec![0x80])];
    let r = c.authed(METHOD_ALLOCATE, udp_transport).await.unwrap();
    let even = relayed_address(&r).port();
    assert_eq!(even % 2, 0);
    let token = r.get(ATTR_RESERVATION_TOKEN).expect("RESERVATION-TOKEN");
    let mut d = TurnClient::udp(udp(&server)).await;
    d.challenge(&user, &pass).await;
    d.extra = vec![(ATTR_RESERVATION_TOKEN, token.clone())];
    let r = d.authed(METHOD_ALLOCATE, udp_transport).await.unwrap();
    assert_eq!(relayed_address(&r).port(), even + 1);
    let mut e = TurnClient::udp(udp(&server)).await;
    e.challenge(&user, &pass).await;
    e.extra = vec![(ATTR_RESERVATION_TOKEN, token)];
    assert_eq!(
        e.authed(METHOD_ALLOCATE, udp_transport).await.unwrap_err(),
        508,
        "token used"
    );
    e.extra = vec![(ATTR_EVEN_PORT, vec![0x00])];
    let r = e.authed(METHOD_ALLOCATE, udp_transport).await.unwrap();
    assert_eq!(relayed_address(&r).port() % 2, 0);
    assert!(!r.contains(ATTR_RESERVATION_TOKEN));
    assert_eq!(server.stats().allocations, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn quota_per_username_is_486() {
    let mut config = test_config();
    config.per_user_relay_allocation_limit = 2;
    let server = start(config).await;
    let (user, pass) = creds("PA_quota");
    let mut a = TurnClient::udp(udp(&server)).await;
    let mut b = TurnClient::udp(udp(&server)).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    a.allocate(&user, &pass).await.unwrap();
    b.allocate(&user, &pass).await.unwrap();
    assert_eq!(c.allocate(&user, &pass).await.unwrap_err(), 486);
    // Another user is not affected; freeing one slot lets the third in.
    let (other, other_pass) = creds("PA_other");
    let mut d = TurnClient::udp(udp(&server)).await;
    d.allocate(&other, &other_pass).await.unwrap();
    a.refresh(0).await.unwrap();
    eventually("slot freed", || server.stats().allocations == 2).await;
    c.authed(METHOD_ALLOCATE, udp_transport).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn denied_peers_are_403_unless_allowed() {
    let server = start(test_config()).await;
    let (user, pass) = creds("PA_peers");
    let mut c = TurnClient::udp(udp(&server)).await;
    c.allocate(&user, &pass).await.unwrap();
    for denied in [
        "10.1.2.3:5000",
        "127.0.0.1:5000",
        "169.254.169.254:80",
        "192.168.0.1:1",
    ] {
        let peer: SocketAddr = denied.parse().unwrap();
        assert_eq!(
            c.create_permission(peer).await.unwrap_err(),
            403,
            "{denied}"
        );
        assert_eq!(
            c.channel_bind(0x4000, peer).await.unwrap_err(),
            403,
            "{denied}"
        );
    }
    assert_eq!(
        c.create_permission("[2001:db8::1]:5".parse().unwrap())
            .await
            .unwrap_err(),
        443
    );
    c.create_permission("8.8.8.8:53".parse().unwrap())
        .await
        .unwrap();
    server.shutdown().await;

    let mut config = test_config();
    config.allow_peer_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
    config.always_allowed_peers = vec!["192.168.7.7".parse().unwrap()];
    let server = start(config).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    c.allocate(&user, &pass).await.unwrap();
    c.create_permission("10.1.2.3:5000".parse().unwrap())
        .await
        .unwrap();
    c.channel_bind(0x4001, "192.168.7.7:9".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.create_permission("192.168.7.8:9".parse().unwrap())
            .await
            .unwrap_err(),
        403
    );
    server.shutdown().await;
}

#[tokio::test]
async fn channel_numbers() {
    let server = start(loopback_peers(test_config())).await;
    let (user, pass) = creds("PA_chan");
    let mut c = TurnClient::udp(udp(&server)).await;
    c.allocate(&user, &pass).await.unwrap();
    let p1: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let p2: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    assert_eq!(c.channel_bind(0x3FFF, p1).await.unwrap_err(), 400);
    assert_eq!(c.channel_bind(0x8000, p1).await.unwrap_err(), 400);
    c.channel_bind(0x4000, p1).await.unwrap();
    c.channel_bind(0x4000, p1).await.unwrap(); // refresh
    assert_eq!(
        c.channel_bind(0x4000, p2).await.unwrap_err(),
        400,
        "number taken"
    );
    assert_eq!(
        c.channel_bind(0x4001, p1).await.unwrap_err(),
        400,
        "peer taken"
    );
    c.channel_bind(0x7FFF, p2).await.unwrap();
    server.shutdown().await;

    let mut config = loopback_peers(test_config());
    config.strict_channel_numbers = true;
    let server = start(config).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    c.allocate(&user, &pass).await.unwrap();
    assert_eq!(c.channel_bind(0x5000, p1).await.unwrap_err(), 400);
    c.channel_bind(0x4FFF, p1).await.unwrap();
    server.shutdown().await;
}

/// Send/Data and ChannelData both ways through an echo peer, on an allocated client.
async fn relay_round_trip(c: &mut TurnClient, server: &TurnServer, label: &str) {
    let peer = echo_peer("127.0.0.1").await;
    let (user, pass) = creds(&format!("PA_{label}"));
    let relayed = c.allocate(&user, &pass).await.expect("allocate");

    // Without permission nothing goes out.
    c.send_indication(peer, b"lost").await;
    assert_eq!(c.recv_data(Duration::from_millis(200)).await, None);
    let before = server.stats().dropped.no_permission;
    assert!(before >= 1, "{label}: send without permission is counted");

    c.create_permission(peer).await.unwrap();
    for size in [1usize, 3, 5, 170, 1200] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        c.send_indication(peer, &data).await;
        assert_eq!(
            c.recv_data(WAIT).await,
            Some(Received::Indication(peer, data.clone())),
            "{label}: Send/Data {size}"
        );
    }

    c.channel_bind(0x4123, peer).await.unwrap();
    for size in [0usize, 1, 2, 3, 4, 7, 170, 1400] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        c.send_channel_data(0x4123, &data).await;
        assert_eq!(
            c.recv_data(WAIT).await,
            Some(Received::Channel(0x4123, data.clone())),
            "{label}: ChannelData {size}"
        );
    }
    // Unbound channel: dropped and counted.
    c.send_channel_data(0x4999, b"nope").await;
    eventually("unknown channel counted", || {
        server.stats().dropped.unknown_channel >= 1
    })
    .await;

    // A peer without permission (another loopback address) cannot reach the client.
    let stranger = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger.send_to(b"intruder", relayed).await.unwrap();
    eventually("stranger dropped", || {
        server.stats().dropped.no_permission > before
    })
    .await;
    assert_eq!(c.recv_data(Duration::from_millis(100)).await, None);

    let s = server.stats();
    assert!(s.relayed_to_peers_packets >= 13, "{s}");
    assert!(s.relayed_to_clients_packets >= 13, "{s}");
}

#[tokio::test]
async fn udp_relay_round_trip() {
    let server = start(loopback_peers(test_config())).await;
    let mut c = TurnClient::udp(udp(&server)).await;
    relay_round_trip(&mut c, &server, "udp").await;
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_relay_round_trip_and_close_ends_allocation() {
    let server = start(loopback_peers(test_config())).await;
    let mut c = TurnClient::tcp(tcp(&server)).await;
    let b = c.message(BINDING_REQUEST, vec![], false);
    assert_eq!(mapped_address(&c.transact(&b).await), c.local);
    relay_round_trip(&mut c, &server, "tcp").await;
    assert_eq!(server.stats().allocations, 1);
    c.close().await;
    eventually("TCP close ends the allocation", || {
        server.stats().allocations == 0
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn tls_relay_round_trip() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let mut config = loopback_peers(test_config());
    config.tls_port = Some(0);
    config.cert_file = Some(cert_file);
    config.key_file = Some(key_file);
    let server = start(config).await;
    let tls = server
        .local_addr(ClientTransport::Tls)
        .expect("TLS listener");
    let mut c = TurnClient::tls(tls, cert.cert.der().to_vec()).await;
    relay_round_trip(&mut c, &server, "tls").await;
    server.shutdown().await;
}

#[tokio::test]
async fn startup_errors_name_the_problem() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = test_config();
    config.udp_port = Some(taken.local_addr().unwrap().port());
    let err = turn_server::start(config).await.err().unwrap().to_string();
    assert!(
        err.contains(&taken.local_addr().unwrap().to_string()),
        "{err}"
    );

    let mut config = test_config();
    config.enabled = false;
    assert!(matches!(
        turn_server::start(config).await,
        Err(turn_server::TurnError::Disabled)
    ));
    let mut config = test_config();
    config.relay_ip = "0.0.0.0".parse().unwrap();
    assert!(turn_server::start(config).await.is_err());
    let mut config = test_config();
    config.tls_port = Some(0);
    config.cert_file = Some("/nonexistent/cert.pem".into());
    config.key_file = Some("/nonexistent/key.pem".into());
    let err = turn_server::start(config).await.err().unwrap().to_string();
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn config_defaults() {
    let c = TurnConfig::default();
    assert_eq!(c.udp_port, Some(3478));
    assert_eq!(c.tcp_port, Some(3478));
    assert_eq!(c.tls_port, Some(5349));
    assert_eq!((c.relay_range_start, c.relay_range_end), (30000, 40000));
    assert_eq!(c.ttl_seconds, 14400);
    assert_eq!(c.per_user_relay_allocation_limit, 10);
    assert_eq!(c.realm, "switchyard");
    assert_eq!(c.deny_peer_cidrs, turn_server::default_deny_peer_cidrs());
    assert!(!c.tls_enabled());
    let mut c = c;
    c.auth_secret = Some("s".into());
    let (u, p) = c.issue_credentials("PA_1", 100).unwrap();
    assert_eq!(u, "14500:PA_1");
    assert_eq!(
        (u, p),
        turn_server::rest_credentials("s", "PA_1", Duration::from_secs(14400), 100)
    );
}
