//! Layout proof for the split-driver wire formats: every structure, offset and constant of
//! `hypercall_abi::io` is compared with the value Xen's own headers give (`libxen-dev`).

mod common;

use core::mem::{offset_of, size_of};
use hypercall_abi::io::{blkif::*, console::*, netif::*, ring::*, xenbus::*, xenstore::*};

macro_rules! pairs {
    ($($name:expr => $c:expr, $r:expr;)*) => {
        (vec![$(($name, $c)),*], vec![$(($name, ($r) as u64)),*])
    };
}

#[test]
fn ring_blkif_netif_layout_matches_xen_headers() {
    let (c, rust) = pairs! {
        "sring_hdr" => "offsetof(struct blkif_sring, ring)", size_of::<SringHeader>();
        "req_prod" => "offsetof(struct blkif_sring, req_prod)", offset_of!(SringHeader, req_prod);
        "req_event" => "offsetof(struct blkif_sring, req_event)", offset_of!(SringHeader, req_event);
        "rsp_prod" => "offsetof(struct blkif_sring, rsp_prod)", offset_of!(SringHeader, rsp_prod);
        "rsp_event" => "offsetof(struct blkif_sring, rsp_event)", offset_of!(SringHeader, rsp_event);
        "pvt" => "offsetof(struct blkif_sring, pvt)", offset_of!(SringHeader, pvt);
        "pad" => "offsetof(struct blkif_sring, __pad)", offset_of!(SringHeader, pad);
        "REQ_PROD_OFFSET" => "offsetof(struct netif_tx_sring, req_prod)", REQ_PROD_OFFSET;
        "REQ_EVENT_OFFSET" => "offsetof(struct netif_tx_sring, req_event)", REQ_EVENT_OFFSET;
        "RSP_PROD_OFFSET" => "offsetof(struct netif_tx_sring, rsp_prod)", RSP_PROD_OFFSET;
        "RSP_EVENT_OFFSET" => "offsetof(struct netif_tx_sring, rsp_event)", RSP_EVENT_OFFSET;
        "PVT_OFFSET" => "offsetof(struct netif_rx_sring, pvt)", PVT_OFFSET;
        "RING_OFFSET" => "offsetof(struct netif_rx_sring, ring)", RING_OFFSET;
        // blkif
        "blk_seg" => "sizeof(struct blkif_request_segment)", size_of::<BlkifRequestSegment>();
        "blk_seg_gref" => "offsetof(struct blkif_request_segment, gref)", offset_of!(BlkifRequestSegment, gref);
        "blk_seg_first" => "offsetof(struct blkif_request_segment, first_sect)", offset_of!(BlkifRequestSegment, first_sect);
        "blk_seg_last" => "offsetof(struct blkif_request_segment, last_sect)", offset_of!(BlkifRequestSegment, last_sect);
        "blk_req" => "sizeof(struct blkif_request)", size_of::<BlkifRequest>();
        "blk_req_op" => "offsetof(struct blkif_request, operation)", offset_of!(BlkifRequest, operation);
        "blk_req_nseg" => "offsetof(struct blkif_request, nr_segments)", offset_of!(BlkifRequest, nr_segments);
        "blk_req_handle" => "offsetof(struct blkif_request, handle)", offset_of!(BlkifRequest, handle);
        "blk_req_id" => "offsetof(struct blkif_request, id)", offset_of!(BlkifRequest, id);
        "blk_req_sector" => "offsetof(struct blkif_request, sector_number)", offset_of!(BlkifRequest, sector_number);
        "blk_req_seg" => "offsetof(struct blkif_request, seg)", offset_of!(BlkifRequest, seg);
        "blk_disc" => "sizeof(struct blkif_request_discard)", size_of::<BlkifRequestDiscard>();
        "blk_disc_flag" => "offsetof(struct blkif_request_discard, flag)", offset_of!(BlkifRequestDiscard, flag);
        "blk_disc_handle" => "offsetof(struct blkif_request_discard, handle)", offset_of!(BlkifRequestDiscard, handle);
        "blk_disc_id" => "offsetof(struct blkif_request_discard, id)", offset_of!(BlkifRequestDiscard, id);
        "blk_disc_sector" => "offsetof(struct blkif_request_discard, sector_number)", offset_of!(BlkifRequestDiscard, sector_number);
        "blk_disc_nr" => "offsetof(struct blkif_request_discard, nr_sectors)", offset_of!(BlkifRequestDiscard, nr_sectors);
        "blk_ind" => "sizeof(struct blkif_request_indirect)", size_of::<BlkifRequestIndirect>();
        "blk_ind_op" => "offsetof(struct blkif_request_indirect, indirect_op)", offset_of!(BlkifRequestIndirect, indirect_op);
        "blk_ind_nseg" => "offsetof(struct blkif_request_indirect, nr_segments)", offset_of!(BlkifRequestIndirect, nr_segments);
        "blk_ind_id" => "offsetof(struct blkif_request_indirect, id)", offset_of!(BlkifRequestIndirect, id);
        "blk_ind_sector" => "offsetof(struct blkif_request_indirect, sector_number)", offset_of!(BlkifRequestIndirect, sector_number);
        "blk_ind_handle" => "offsetof(struct blkif_request_indirect, handle)", offset_of!(BlkifRequestIndirect, handle);
        "blk_ind_grefs" => "offsetof(struct blkif_request_indirect, indirect_grefs)", offset_of!(BlkifRequestIndirect, indirect_grefs);
        "blk_rsp" => "sizeof(struct blkif_response)", size_of::<BlkifResponse>();
        "blk_rsp_id" => "offsetof(struct blkif_response, id)", offset_of!(BlkifResponse, id);
        "blk_rsp_op" => "offsetof(struct blkif_response, operation)", offset_of!(BlkifResponse, operation);
        "blk_rsp_status" => "offsetof(struct blkif_response, status)", offset_of!(BlkifResponse, status);
        "blk_entry" => "sizeof(union blkif_sring_entry)", BLKIF_ENTRY_SIZE;
        "blk_ring_size" => "__CONST_RING_SIZE(blkif, 4096)", BLKIF_RING_SIZE;
        "blk_ring_size_2p" => "__CONST_RING_SIZE(blkif, 8192)", ring_size(8192, BLKIF_ENTRY_SIZE);
        "blk_ring_size_4p" => "__CONST_RING_SIZE(blkif, 16384)", ring_size(16384, BLKIF_ENTRY_SIZE);
        "BLKIF_OP_READ" => "BLKIF_OP_READ", BLKIF_OP_READ;
        "BLKIF_OP_WRITE" => "BLKIF_OP_WRITE", BLKIF_OP_WRITE;
        "BLKIF_OP_WRITE_BARRIER" => "BLKIF_OP_WRITE_BARRIER", BLKIF_OP_WRITE_BARRIER;
        "BLKIF_OP_FLUSH_DISKCACHE" => "BLKIF_OP_FLUSH_DISKCACHE", BLKIF_OP_FLUSH_DISKCACHE;
        "BLKIF_OP_RESERVED_1" => "BLKIF_OP_RESERVED_1", BLKIF_OP_RESERVED_1;
        "BLKIF_OP_DISCARD" => "BLKIF_OP_DISCARD", BLKIF_OP_DISCARD;
        "BLKIF_OP_INDIRECT" => "BLKIF_OP_INDIRECT", BLKIF_OP_INDIRECT;
        "BLKIF_MAX_SEGMENTS_PER_REQUEST" => "BLKIF_MAX_SEGMENTS_PER_REQUEST", BLKIF_MAX_SEGMENTS_PER_REQUEST;
        "BLKIF_MAX_INDIRECT_PAGES" => "BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST", BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST;
        "SEGS_PER_INDIRECT" => "4096 / sizeof(struct blkif_request_segment)", BLKIF_SEGS_PER_INDIRECT_FRAME;
        "BLKIF_DISCARD_SECURE" => "BLKIF_DISCARD_SECURE", BLKIF_DISCARD_SECURE;
        "BLKIF_RSP_OKAY" => "(uint16_t)BLKIF_RSP_OKAY", BLKIF_RSP_OKAY as u16;
        "BLKIF_RSP_ERROR" => "(uint16_t)BLKIF_RSP_ERROR", BLKIF_RSP_ERROR as u16;
        "BLKIF_RSP_EOPNOTSUPP" => "(uint16_t)BLKIF_RSP_EOPNOTSUPP", BLKIF_RSP_EOPNOTSUPP as u16;
        "VDISK_CDROM" => "VDISK_CDROM", VDISK_CDROM;
        "VDISK_REMOVABLE" => "VDISK_REMOVABLE", VDISK_REMOVABLE;
        "VDISK_READONLY" => "VDISK_READONLY", VDISK_READONLY;
        // netif
        "tx_req" => "sizeof(struct netif_tx_request)", size_of::<NetifTxRequest>();
        "tx_req_gref" => "offsetof(struct netif_tx_request, gref)", offset_of!(NetifTxRequest, gref);
        "tx_req_offset" => "offsetof(struct netif_tx_request, offset)", offset_of!(NetifTxRequest, offset);
        "tx_req_flags" => "offsetof(struct netif_tx_request, flags)", offset_of!(NetifTxRequest, flags);
        "tx_req_id" => "offsetof(struct netif_tx_request, id)", offset_of!(NetifTxRequest, id);
        "tx_req_size" => "offsetof(struct netif_tx_request, size)", offset_of!(NetifTxRequest, size);
        "tx_rsp" => "sizeof(struct netif_tx_response)", size_of::<NetifTxResponse>();
        "tx_rsp_id" => "offsetof(struct netif_tx_response, id)", offset_of!(NetifTxResponse, id);
        "tx_rsp_status" => "offsetof(struct netif_tx_response, status)", offset_of!(NetifTxResponse, status);
        "rx_req" => "sizeof(struct netif_rx_request)", size_of::<NetifRxRequest>();
        "rx_req_id" => "offsetof(struct netif_rx_request, id)", offset_of!(NetifRxRequest, id);
        "rx_req_pad" => "offsetof(struct netif_rx_request, pad)", offset_of!(NetifRxRequest, pad);
        "rx_req_gref" => "offsetof(struct netif_rx_request, gref)", offset_of!(NetifRxRequest, gref);
        "rx_rsp" => "sizeof(struct netif_rx_response)", size_of::<NetifRxResponse>();
        "rx_rsp_id" => "offsetof(struct netif_rx_response, id)", offset_of!(NetifRxResponse, id);
        "rx_rsp_offset" => "offsetof(struct netif_rx_response, offset)", offset_of!(NetifRxResponse, offset);
        "rx_rsp_flags" => "offsetof(struct netif_rx_response, flags)", offset_of!(NetifRxResponse, flags);
        "rx_rsp_status" => "offsetof(struct netif_rx_response, status)", offset_of!(NetifRxResponse, status);
        "extra" => "sizeof(struct netif_extra_info)", size_of::<NetifExtraInfo>();
        "extra_type" => "offsetof(struct netif_extra_info, type)", offset_of!(NetifExtraInfo, type_);
        "extra_flags" => "offsetof(struct netif_extra_info, flags)", offset_of!(NetifExtraInfo, flags);
        "extra_u" => "offsetof(struct netif_extra_info, u)", offset_of!(NetifExtraInfo, u);
        "extra_gso_size" => "offsetof(struct netif_extra_info, u.gso.size)", 2;
        "extra_gso_type" => "offsetof(struct netif_extra_info, u.gso.type)", 4;
        "extra_gso_features" => "offsetof(struct netif_extra_info, u.gso.features)", 6;
        "extra_mcast" => "offsetof(struct netif_extra_info, u.mcast.addr)", 2;
        "extra_hash_type" => "offsetof(struct netif_extra_info, u.hash.type)", 2;
        "extra_hash_alg" => "offsetof(struct netif_extra_info, u.hash.algorithm)", 3;
        "extra_hash_value" => "offsetof(struct netif_extra_info, u.hash.value)", 4;
        "tx_entry" => "sizeof(union netif_tx_sring_entry)", NETIF_TX_ENTRY_SIZE;
        "rx_entry" => "sizeof(union netif_rx_sring_entry)", NETIF_RX_ENTRY_SIZE;
        "tx_ring_size" => "__CONST_RING_SIZE(netif_tx, 4096)", NET_TX_RING_SIZE;
        "rx_ring_size" => "__CONST_RING_SIZE(netif_rx, 4096)", NET_RX_RING_SIZE;
        "NETTXF_csum_blank" => "NETTXF_csum_blank", NETTXF_CSUM_BLANK;
        "NETTXF_data_validated" => "NETTXF_data_validated", NETTXF_DATA_VALIDATED;
        "NETTXF_more_data" => "NETTXF_more_data", NETTXF_MORE_DATA;
        "NETTXF_extra_info" => "NETTXF_extra_info", NETTXF_EXTRA_INFO;
        "NETRXF_data_validated" => "NETRXF_data_validated", NETRXF_DATA_VALIDATED;
        "NETRXF_csum_blank" => "NETRXF_csum_blank", NETRXF_CSUM_BLANK;
        "NETRXF_more_data" => "NETRXF_more_data", NETRXF_MORE_DATA;
        "NETRXF_extra_info" => "NETRXF_extra_info", NETRXF_EXTRA_INFO;
        "NETRXF_gso_prefix" => "NETRXF_gso_prefix", NETRXF_GSO_PREFIX;
        "XEN_NETIF_MAX_TX_SIZE" => "XEN_NETIF_MAX_TX_SIZE", XEN_NETIF_MAX_TX_SIZE;
        "XEN_NETIF_NR_SLOTS_MIN" => "XEN_NETIF_NR_SLOTS_MIN", XEN_NETIF_NR_SLOTS_MIN;
        "EXTRA_NONE" => "XEN_NETIF_EXTRA_TYPE_NONE", XEN_NETIF_EXTRA_TYPE_NONE;
        "EXTRA_GSO" => "XEN_NETIF_EXTRA_TYPE_GSO", XEN_NETIF_EXTRA_TYPE_GSO;
        "EXTRA_MCAST_ADD" => "XEN_NETIF_EXTRA_TYPE_MCAST_ADD", XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
        "EXTRA_MCAST_DEL" => "XEN_NETIF_EXTRA_TYPE_MCAST_DEL", XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
        "EXTRA_HASH" => "XEN_NETIF_EXTRA_TYPE_HASH", XEN_NETIF_EXTRA_TYPE_HASH;
        "EXTRA_MAX" => "XEN_NETIF_EXTRA_TYPE_MAX", XEN_NETIF_EXTRA_TYPE_MAX;
        "EXTRA_FLAG_MORE" => "XEN_NETIF_EXTRA_FLAG_MORE", XEN_NETIF_EXTRA_FLAG_MORE;
        "GSO_NONE" => "XEN_NETIF_GSO_TYPE_NONE", XEN_NETIF_GSO_TYPE_NONE;
        "GSO_TCPV4" => "XEN_NETIF_GSO_TYPE_TCPV4", XEN_NETIF_GSO_TYPE_TCPV4;
        "GSO_TCPV6" => "XEN_NETIF_GSO_TYPE_TCPV6", XEN_NETIF_GSO_TYPE_TCPV6;
        "NETIF_RSP_DROPPED" => "(uint16_t)NETIF_RSP_DROPPED", NETIF_RSP_DROPPED as u16;
        "NETIF_RSP_ERROR" => "(uint16_t)NETIF_RSP_ERROR", NETIF_RSP_ERROR as u16;
        "NETIF_RSP_OKAY" => "(uint16_t)NETIF_RSP_OKAY", NETIF_RSP_OKAY as u16;
        "NETIF_RSP_NULL" => "(uint16_t)NETIF_RSP_NULL", NETIF_RSP_NULL as u16;
    };
    let values = common::c_values("io-ring-blk-net", &["xen/io/blkif.h", "xen/io/netif.h"], &c);
    common::assert_all_equal(&values, &rust);
}

#[test]
fn console_xenstore_xenbus_layout_matches_xen_headers() {
    let mut c: Vec<(String, String)> = Vec::new();
    let mut rust: Vec<(String, u64)> = Vec::new();
    let mut add = |name: &str, expr: &str, v: u64| {
        c.push((name.to_string(), expr.to_string()));
        rust.push((name.to_string(), v));
    };
    let cons = |f: usize| f as u64;
    add("cons", "sizeof(struct xencons_interface)", size_of::<XenconsInterface>() as u64);
    add("cons_in", "offsetof(struct xencons_interface, in)", cons(offset_of!(XenconsInterface, in_)));
    add("cons_out", "offsetof(struct xencons_interface, out)", cons(offset_of!(XenconsInterface, out)));
    add("in_cons", "offsetof(struct xencons_interface, in_cons)", cons(offset_of!(XenconsInterface, in_cons)));
    add("in_prod", "offsetof(struct xencons_interface, in_prod)", cons(offset_of!(XenconsInterface, in_prod)));
    add("out_cons", "offsetof(struct xencons_interface, out_cons)", cons(offset_of!(XenconsInterface, out_cons)));
    add("out_prod", "offsetof(struct xencons_interface, out_prod)", cons(offset_of!(XenconsInterface, out_prod)));
    add("CONSOLE_IN.cons", "offsetof(struct xencons_interface, in_cons)", CONSOLE_IN.cons as u64);
    add("CONSOLE_IN.prod", "offsetof(struct xencons_interface, in_prod)", CONSOLE_IN.prod as u64);
    add("CONSOLE_OUT.cons", "offsetof(struct xencons_interface, out_cons)", CONSOLE_OUT.cons as u64);
    add("CONSOLE_OUT.prod", "offsetof(struct xencons_interface, out_prod)", CONSOLE_OUT.prod as u64);
    add("CONSOLE_OUT.data", "offsetof(struct xencons_interface, out)", CONSOLE_OUT.data as u64);
    add("in_size", "sizeof(((struct xencons_interface *)0)->in)", u64::from(XENCONS_IN_SIZE));
    add("out_size", "sizeof(((struct xencons_interface *)0)->out)", u64::from(XENCONS_OUT_SIZE));
    for idx in [0u32, 5, 1023, 1024, 2047, 2048, 4099, u32::MAX] {
        let s = "((struct xencons_interface *)0)";
        add(&format!("mask_in_{idx}"), &format!("MASK_XENCONS_IDX({idx}u, {s}->in)"), mask_in(idx).into());
        add(&format!("mask_out_{idx}"), &format!("MASK_XENCONS_IDX({idx}u, {s}->out)"), mask_out(idx).into());
    }
    // xenstore
    add("xsd", "sizeof(struct xsd_sockmsg)", size_of::<XsdSockmsg>() as u64);
    add("xsd_type", "offsetof(struct xsd_sockmsg, type)", offset_of!(XsdSockmsg, type_) as u64);
    add("xsd_req_id", "offsetof(struct xsd_sockmsg, req_id)", offset_of!(XsdSockmsg, req_id) as u64);
    add("xsd_tx_id", "offsetof(struct xsd_sockmsg, tx_id)", offset_of!(XsdSockmsg, tx_id) as u64);
    add("xsd_len", "offsetof(struct xsd_sockmsg, len)", offset_of!(XsdSockmsg, len) as u64);
    type X = XenstoreDomainInterface;
    let xs = "struct xenstore_domain_interface";
    add("xsi", &format!("sizeof({xs})"), size_of::<X>() as u64);
    add("xsi_req", &format!("offsetof({xs}, req)"), offset_of!(X, req) as u64);
    add("xsi_rsp", &format!("offsetof({xs}, rsp)"), offset_of!(X, rsp) as u64);
    add("xsi_req_cons", &format!("offsetof({xs}, req_cons)"), offset_of!(X, req_cons) as u64);
    add("xsi_req_prod", &format!("offsetof({xs}, req_prod)"), offset_of!(X, req_prod) as u64);
    add("xsi_rsp_cons", &format!("offsetof({xs}, rsp_cons)"), offset_of!(X, rsp_cons) as u64);
    add("xsi_rsp_prod", &format!("offsetof({xs}, rsp_prod)"), offset_of!(X, rsp_prod) as u64);
    add("xsi_features", &format!("offsetof({xs}, server_features)"), offset_of!(X, server_features) as u64);
    add("xsi_connection", &format!("offsetof({xs}, connection)"), offset_of!(X, connection) as u64);
    add("xsi_error", &format!("offsetof({xs}, error)"), offset_of!(X, error) as u64);
    add("XS_REQ_RING.cons", &format!("offsetof({xs}, req_cons)"), XS_REQ_RING.cons as u64);
    add("XS_REQ_RING.prod", &format!("offsetof({xs}, req_prod)"), XS_REQ_RING.prod as u64);
    add("XS_RSP_RING.cons", &format!("offsetof({xs}, rsp_cons)"), XS_RSP_RING.cons as u64);
    add("XS_RSP_RING.prod", &format!("offsetof({xs}, rsp_prod)"), XS_RSP_RING.prod as u64);
    add("XS_RSP_RING.data", &format!("offsetof({xs}, rsp)"), XS_RSP_RING.data as u64);
    add("XENSTORE_RING_SIZE", "XENSTORE_RING_SIZE", XENSTORE_RING_SIZE.into());
    add("XENSTORE_PAYLOAD_MAX", "XENSTORE_PAYLOAD_MAX", XENSTORE_PAYLOAD_MAX.into());
    add("XENSTORE_ABS_PATH_MAX", "XENSTORE_ABS_PATH_MAX", XENSTORE_ABS_PATH_MAX as u64);
    add("XENSTORE_REL_PATH_MAX", "XENSTORE_REL_PATH_MAX", XENSTORE_REL_PATH_MAX as u64);
    add("FEAT_RECONN", "XENSTORE_SERVER_FEATURE_RECONNECTION", XENSTORE_SERVER_FEATURE_RECONNECTION.into());
    add("FEAT_ERROR", "XENSTORE_SERVER_FEATURE_ERROR", XENSTORE_SERVER_FEATURE_ERROR.into());
    add("CONNECTED", "XENSTORE_CONNECTED", XENSTORE_CONNECTED.into());
    add("RECONNECT", "XENSTORE_RECONNECT", XENSTORE_RECONNECT.into());
    add("ERR_NONE", "XENSTORE_ERROR_NONE", XENSTORE_ERROR_NONE.into());
    add("ERR_COMM", "XENSTORE_ERROR_COMM", XENSTORE_ERROR_COMM.into());
    add("ERR_RINGIDX", "XENSTORE_ERROR_RINGIDX", XENSTORE_ERROR_RINGIDX.into());
    add("ERR_PROTO", "XENSTORE_ERROR_PROTO", XENSTORE_ERROR_PROTO.into());
    add("XS_TYPE_COUNT", "XS_TYPE_COUNT", XS_TYPE_COUNT.into());
    add("XS_INVALID", "XS_INVALID", XsType::Invalid as u64);
    add("XS_DEBUG", "XS_DEBUG", XsType::Control as u64);
    add("XS_WATCH_PATH", "XS_WATCH_PATH", XS_WATCH_PATH.into());
    add("XS_WATCH_TOKEN", "XS_WATCH_TOKEN", XS_WATCH_TOKEN.into());
    let names = [
        "XS_CONTROL",
        "XS_DIRECTORY",
        "XS_READ",
        "XS_GET_PERMS",
        "XS_WATCH",
        "XS_UNWATCH",
        "XS_TRANSACTION_START",
        "XS_TRANSACTION_END",
        "XS_INTRODUCE",
        "XS_RELEASE",
        "XS_GET_DOMAIN_PATH",
        "XS_WRITE",
        "XS_MKDIR",
        "XS_RM",
        "XS_SET_PERMS",
        "XS_WATCH_EVENT",
        "XS_ERROR",
        "XS_IS_DOMAIN_INTRODUCED",
        "XS_RESUME",
        "XS_SET_TARGET",
        "XS_RESET_WATCHES",
        "XS_DIRECTORY_PART",
    ];
    assert_eq!(names.len(), XsType::ALL.len());
    for (n, t) in names.iter().zip(XsType::ALL) {
        add(n, n, t as u64);
    }
    add("xsd_errors_len", "sizeof(xsd_errors) / sizeof(xsd_errors[0])", XSD_ERRORS.len() as u64);
    for (i, (errno, name)) in XSD_ERRORS.iter().enumerate() {
        add(&format!("errno_{i}"), &format!("xsd_errors[{i}].errnum"), *errno as u64);
        add(&format!("errname_{i}"), &format!("strcmp(xsd_errors[{i}].errstring, \"{name}\") == 0"), 1);
    }
    for (wire, text) in [
        ("XS_WRITE_NONE", XS_WRITE_NONE),
        ("XS_WRITE_CREATE", XS_WRITE_CREATE),
        ("XS_WRITE_CREATE_EXCL", XS_WRITE_CREATE_EXCL),
    ] {
        add(wire, &format!("strcmp({wire}, \"{text}\") == 0"), 1);
    }
    // xenbus
    let states = [
        "XenbusStateUnknown",
        "XenbusStateInitialising",
        "XenbusStateInitWait",
        "XenbusStateInitialised",
        "XenbusStateConnected",
        "XenbusStateClosing",
        "XenbusStateClosed",
        "XenbusStateReconfiguring",
        "XenbusStateReconfigured",
    ];
    for (n, s) in states.iter().zip(XenbusState::ALL) {
        add(n, n, s as u64);
    }
    let c_ref: Vec<(&str, &str)> = c.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let rust_ref: Vec<(&str, u64)> = rust.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let values = common::c_values(
        "io-cons-xs-bus",
        &["errno.h", "string.h", "xen/io/console.h", "xen/io/xs_wire.h", "xen/io/xenbus.h"],
        &c_ref,
    );
    common::assert_all_equal(&values, &rust_ref);
}
