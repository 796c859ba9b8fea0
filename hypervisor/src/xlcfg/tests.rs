//! Tests of the xl.cfg parser and of the boot-archive domain plan.

use super::*;
use crate::cpio::{build, Reader};
use std::string::ToString;

fn parse(text: &str) -> Result<ParsedConfig, ConfigError> {
    DomainConfig::parse(text, false)
}

fn reason(text: &str) -> (u32, Reason) {
    let e = parse(text).unwrap_err();
    (e.line, e.reason)
}

#[test]
fn full_config_with_comments_lists_and_defaults() {
    let text = "# a domU\n\nname = \"web\"   # trailing comment\nmemory = 256\nvcpus = 1\n\
                kernel = '/guest.elf'\nextra = \"role=demo console=hvc0\"\ncpu_weight = 512\n\
                type = \"pv\"\ndisk = [ 'phy:/dev/vg/web,xvda,w', \"file:/x.iso,xvdc:cdrom,r\" ]\n\
                vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]\n";
    let ParsedConfig { config, warnings } = parse(text).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(config.name, "web");
    assert_eq!(config.name_line, 3);
    assert_eq!(config.memory_mib, 256);
    assert_eq!(config.memory_bytes(), 256 << 20);
    assert_eq!(config.kernel, "/guest.elf");
    assert_eq!(config.kernel_line, 6);
    assert_eq!(config.cmdline, "role=demo console=hvc0");
    assert_eq!(config.weight, 512);
    assert_eq!(config.disks, ["phy:/dev/vg/web,xvda,w", "file:/x.iso,xvdc:cdrom,r"]);
    assert_eq!(config.vifs, ["mac=00:16:3e:00:00:01,bridge=xenbr0"]);

    let minimal = parse("name='a'\nkernel='k'").unwrap().config;
    assert_eq!(minimal.memory_mib, DEFAULT_MEMORY_MIB);
    assert_eq!(minimal.weight, DEFAULT_WEIGHT);
    assert_eq!(minimal.cmdline, "");
    assert!(minimal.disks.is_empty() && minimal.vifs.is_empty());
}

#[test]
fn syntax_variants_that_xl_accepts() {
    // Semicolons, a multi-line list with a comment and a trailing comma, hex and quoted numbers.
    let text = "name='a'; kernel='k'\nmemory = 0x40\nweight = \"300\"\n\
                disk = [\n  'a', # first\n  'b',\n]\nvif = []\n";
    let config = parse(text).unwrap().config;
    assert_eq!(config.memory_mib, 64);
    assert_eq!(config.weight, 300);
    assert_eq!(config.disks, ["a", "b"]);
    assert!(config.vifs.is_empty());
    let escaped = parse("name='a'\nkernel='k'\nextra=\"say \\\"hi\\\"\\t\\\\ 'x'\"").unwrap();
    assert_eq!(escaped.config.cmdline, "say \"hi\"\t\\ 'x'");
    // Single quotes keep backslashes; CRLF line ends are fine.
    let raw = parse("name='a'\r\nkernel='k'\r\nextra='a\\nb'\r\n").unwrap();
    assert_eq!(raw.config.cmdline, "a\\nb");
}

#[test]
fn cmdline_root_and_extra_combine_as_in_xl() {
    let c = parse("name='a'\nkernel='k'\nroot='/dev/xvda1 ro'\nextra='quiet'").unwrap().config;
    assert_eq!(c.cmdline, "root=/dev/xvda1 ro quiet");
    let p = parse("name='a'\nkernel='k'\nextra='x'\ncmdline='only this'").unwrap();
    assert_eq!(p.config.cmdline, "only this");
    assert_eq!(p.warnings, [Warning { line: 4, kind: WarningKind::CmdlineOverridesRootExtra }]);
}

#[test]
fn a_command_line_longer_than_start_info_holds_is_refused_not_cut() {
    let fits = "x".repeat(MAX_CMDLINE_BYTES);
    assert_eq!(parse(&format!("name='a'\nkernel='k'\ncmdline='{fits}'")).unwrap().config.cmdline, fits);
    let long = "x".repeat(1000) + " console=hvc0 root=/dev/xvda1 ro";
    assert_eq!(reason(&format!("name='a'\nkernel='k'\ncmdline='{long}'")), (3, Reason::CmdlineTooLong(long.len())));
    // Combined from root and extra, it is refused on the line of the longer part.
    let text = format!("name='a'\nkernel='k'\nroot='/dev/xvda1'\nextra='{}'", "y".repeat(1010));
    assert_eq!(reason(&text), (4, Reason::CmdlineTooLong(1010 + "root=/dev/xvda1 ".len())));
    // `root` alone is `root=ROOT`, without a space after it (xl): 1023 bytes fit.
    let root = "r".repeat(MAX_CMDLINE_BYTES - "root=".len());
    assert_eq!(parse(&format!("name='a'\nkernel='k'\nroot='{root}'")).unwrap().config.cmdline, format!("root={root}"));
}

#[test]
fn unknown_keys_warn_and_are_ignored() {
    let p = parse("name='a'\nkernel='k'\non_crash='destroy'\nvnc=1").unwrap();
    assert_eq!(p.warnings.len(), 2);
    assert_eq!(p.warnings[0].kind, WarningKind::UnknownKey("on_crash".to_string()));
    assert_eq!(p.warnings[1].in_file("d.cfg").to_string(), "d.cfg:4: warning: unknown key 'vnc' ignored");
}

#[test]
fn semantic_errors_name_line_and_reason() {
    assert_eq!(reason("kernel='k'"), (0, Reason::MissingKey("name")));
    assert_eq!(reason("name='a'"), (0, Reason::MissingKey("kernel")));
    let dup = Reason::DuplicateKey { key: "name".to_string(), first_line: 1 };
    assert_eq!(reason("name='a'\nkernel='k'\nname='b'"), (3, dup));
    let dup = reason("name='a'\nkernel='k'\ncpu_weight=2\nweight=3");
    assert_eq!(dup.0, 4);
    assert_eq!(reason("name='a'\nkernel='k'\nvcpus=2"), (3, Reason::UnsupportedVcpus(2)));
    assert_eq!(reason("name='a'\nkernel='k'\nmaxvcpus=4"), (3, Reason::UnsupportedVcpus(4)));
    let zero = Reason::OutOfRange { key: "cpu_weight", value: 0, min: 1, max: 65535 };
    assert_eq!(reason("name='a'\nkernel='k'\nweight=0"), (3, zero));
    let big = Reason::OutOfRange { key: "cpu_weight", value: 65536, min: 1, max: 65535 };
    assert_eq!(reason("name='a'\nkernel='k'\ncpu_weight=65536"), (3, big));
    assert!(matches!(reason("name='a'\nkernel='k'\nmemory=0").1, Reason::OutOfRange { .. }));
    let huge = "name='a'\nkernel='k'\nmemory=99999999999999999999999";
    assert!(matches!(reason(huge).1, Reason::BadNumber { .. }));
    assert!(matches!(reason("name='a'\nkernel='k'\nmemory='lots'").1, Reason::BadNumber { .. }));
    assert!(matches!(reason("name='a'\nkernel='k'\nmemory=010").1, Reason::BadNumber { .. }));
    assert!(matches!(reason("name='a'\nkernel='k'\ndisk='x'").1, Reason::WrongType { .. }));
    assert!(matches!(reason("name=['a']\nkernel='k'").1, Reason::WrongType { .. }));
    let hvm = Reason::UnsupportedType("hvm".to_string());
    assert_eq!(reason("name='a'\nkernel='k'\ntype='hvm'"), (3, hvm));
    assert!(parse("name='a'\nkernel='k'\nbuilder='generic'\ntype='pv'").is_ok());
}

#[test]
fn names_are_checked() {
    for bad in ["''", "'has space'", "'a/b'", "'42'", "'Domain-0'", &alloc::format!("'{}'", "x".repeat(65))] {
        let text = alloc::format!("name={bad}\nkernel='k'");
        assert!(matches!(reason(&text), (1, Reason::BadName(_))), "{bad} accepted");
    }
    assert_eq!(DomainConfig::parse("kernel='k'", true).unwrap().config.name, DOM0_NAME);
    assert!(DomainConfig::parse("name='Domain-0'\nkernel='k'", true).is_ok());
}

#[test]
fn syntax_errors_carry_lines() {
    let cases: &[(&str, u32)] = &[
        ("name='a\nkernel='k'", 1),
        ("name='a'\nkernel=\"k", 2),
        ("name='a'\n\nkernel 'k'", 3),
        ("name='a'\nkernel=", 2),
        ("name='a'\nkernel='k' 'x'", 2),
        ("name='a'\ndisk=['a' 'b']", 2),
        ("name='a'\ndisk=['a',\n'b'", 3),
        ("name='a'\n= 3", 2),
        ("name='a'\nkernel=k", 2),
        ("name='a'\nextra=\"\\q\"", 2),
        ("name='a'\n$x=1", 2),
    ];
    for (text, line) in cases {
        let e = parse(text).unwrap_err();
        assert!(matches!(e.reason, Reason::Syntax(_)), "{text:?}: {e:?}");
        assert_eq!(e.line, *line, "{text:?}: {e:?}");
    }
    assert_eq!(reason("name='a'\nextra+='x'"), (2, Reason::AppendUnsupported));
}

#[test]
fn errors_display_file_line_reason() {
    let e = parse("name='a'\nkernel='k'\nvcpus=2").unwrap_err();
    assert_eq!(e.in_file("web.cfg").to_string(), "web.cfg:3: vcpus = 2: only 1 vCPU per domain for now");
    let e = parse("kernel='k'").unwrap_err();
    assert_eq!(e.in_file("web.cfg").to_string(), "web.cfg: required key 'name' is missing");
}

#[test]
fn arbitrary_bytes_never_panic() {
    let seed_text = "name = 'a' # c\nmemory = 0x40; disk = [ \"x\\\"\", 'y',\n ]\nkernel='k'\n";
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut parsed = 0u32;
    for round in 0..3000 {
        let mut bytes = seed_text.as_bytes().to_vec();
        for _ in 0..(round % 5 + 1) {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (seed >> 33) as usize % bytes.len();
            let specials = b"'\"[],;=#\n\\+0x ";
            bytes[at] = specials.get((seed >> 20) as usize % 20).copied().unwrap_or((seed >> 8) as u8);
        }
        // Cut short in a quarter of the rounds only: the others keep `kernel` (the last
        // key), so a good share still parses and the checks after the syntax run too.
        if round % 4 == 0 {
            bytes.truncate((seed >> 40) as usize % (bytes.len() + 1));
        }
        let text = std::string::String::from_utf8_lossy(&bytes);
        parsed += u32::from(DomainConfig::parse(&text, round % 2 == 0).is_ok());
    }
    assert!(parsed >= 100, "only {parsed} of 3000 mutated configs parsed: the semantic checks went untested");
}

fn outcome_names<'a>(outcomes: &'a [ConfigOutcome<'a>]) -> Vec<(&'a str, Option<u16>)> {
    outcomes.iter().map(|o| (o.file, o.result.as_ref().ok().map(|s| s.domid))).collect()
}

#[test]
fn archive_plan_assigns_dom0_and_domu_ids_and_resolves_kernels() {
    let archive = build(&[
        ("guest.elf", b"\x7fELF-guest"),
        ("web.cfg", b"name='web'\nkernel='guest.elf'\nweight=512\nmemory=64\nextra='role=web'\n"),
        ("dom0.cfg", b"kernel='./dom0.elf'\nvif=['bridge=xenbr0']\n"),
        ("dom0.elf", b"\x7fELF-dom0"),
        ("notes.txt", b"ignored"),
        ("db.cfg", b"name='db'\nkernel='/guest.elf'\n"),
    ]);
    let outcomes = plan_domains_from_archive(&archive).unwrap();
    assert_eq!(outcome_names(&outcomes), [("dom0.cfg", Some(0)), ("web.cfg", Some(1)), ("db.cfg", Some(2))]);
    let dom0 = outcomes[0].result.as_ref().unwrap();
    assert!(dom0.is_dom0);
    assert_eq!(dom0.name, "Domain-0");
    assert_eq!(dom0.kernel, b"\x7fELF-dom0");
    assert_eq!(dom0.vifs, ["bridge=xenbr0"]);
    let web = outcomes[1].result.as_ref().unwrap();
    assert!(!web.is_dom0);
    assert_eq!((web.weight, web.memory_bytes), (512, 64 << 20));
    assert_eq!(web.kernel, b"\x7fELF-guest");
    assert_eq!(web.cmdline, "role=web");
    let db = outcomes[2].result.as_ref().unwrap();
    assert_eq!((db.weight, db.memory_bytes), (DEFAULT_WEIGHT, DEFAULT_MEMORY_MIB << 20));
    // The kernel slice points into the archive itself: no copy.
    let start = archive.as_ptr() as usize;
    let kernel = db.kernel.as_ptr() as usize;
    assert!(kernel > start && kernel < start + archive.len());
}

#[test]
fn a_bad_config_is_refused_and_the_others_still_start() {
    let archive = build(&[
        ("k.elf", b"\x7fELF"),
        ("dom0.cfg", b"name='boss'\nkernel='k.elf'\n"),
        ("a.cfg", b"name='a'\nkernel='k.elf'\nvcpus=4\n"),
        ("b.cfg", b"name='b'\nkernel='missing.elf'\n"),
        ("c.cfg", b"name='c'\nkernel='k.elf'\n"),
        ("d.cfg", b"\n\nname='boss'\nkernel='k.elf'\n"),
        ("e.cfg", b"name='e'\n\xff\nkernel='k.elf'\n"),
        ("f.cfg", b"name='f'\nkernel='k.elf'\nfoo=1\n"),
    ]);
    let entries: Vec<_> = Reader::new(&archive).collect::<Result<_, _>>().unwrap();
    let outcomes = plan_domains(&entries);
    assert_eq!(
        outcome_names(&outcomes),
        [
            ("dom0.cfg", Some(0)),
            ("a.cfg", None),
            ("b.cfg", None),
            ("c.cfg", Some(1)),
            ("d.cfg", None),
            ("e.cfg", None),
            ("f.cfg", Some(2)),
        ]
    );
    let report = |i: usize| outcomes[i].result.as_ref().unwrap_err().in_file(outcomes[i].file).to_string();
    assert_eq!(report(1), "a.cfg:3: vcpus = 4: only 1 vCPU per domain for now");
    assert_eq!(report(2), "b.cfg:2: kernel 'missing.elf' is not a file in the archive");
    assert_eq!(report(4), "d.cfg:3: domain name 'boss' is already used by dom0.cfg");
    assert_eq!(report(5), "e.cfg:2: file is not UTF-8 text");
    assert_eq!(outcomes[6].warnings.len(), 1);
}

#[test]
fn without_a_valid_dom0_cfg_no_domu_is_promoted() {
    let archive = build(&[
        ("k.elf", b"\x7fELF"),
        ("a.cfg", b"name='a'\nkernel='k.elf'\n"),
        ("dom0.cfg", b"name='x'\nkernel='nope'\n"),
    ]);
    let outcomes = plan_domains_from_archive(&archive).unwrap();
    assert_eq!(outcome_names(&outcomes), [("dom0.cfg", None), ("a.cfg", Some(1))]);
    let archive = build(&[("k.elf", b"\x7fELF"), ("sub/dom0.cfg", b"name='a'\nkernel='k.elf'\n")]);
    let outcomes = plan_domains_from_archive(&archive).unwrap();
    assert!(!outcomes[0].result.as_ref().unwrap().is_dom0);
}

#[test]
fn duplicate_config_members_are_refused() {
    let archive = build(&[
        ("k.elf", b"\x7fELF"),
        ("a.cfg", b"name='a'\nkernel='k.elf'\n"),
        ("a.cfg", b"name='a2'\nkernel='k.elf'\n"),
    ]);
    let outcomes = plan_domains_from_archive(&archive).unwrap();
    assert_eq!(outcomes[1].result, Err(ConfigError { line: 0, reason: Reason::DuplicateConfigFile }));
    assert!(plan_domains_from_archive(&archive[..archive.len() - 8]).is_err());
}

#[test]
fn an_archive_without_configs_plans_nothing() {
    let archive = build(&[("guest.elf", b"\x7fELF")]);
    assert!(plan_domains_from_archive(&archive).unwrap().is_empty());
}

#[test]
fn cpus_pins_to_one_cpu_number() {
    let parse = |text: &str| parse(text).map(|p| p.config.cpu);
    assert_eq!(parse("name='a'\nkernel='k'"), Ok(0));
    assert_eq!(parse("name='a'\nkernel='k'\ncpus = 1"), Ok(1));
    assert_eq!(parse("name='a'\nkernel='k'\ncpus = \"3\""), Ok(3));
    // Lists and ranges are xl syntax we do not take: refused with the line, not misread.
    for bad in ["cpus = \"0-3\"", "cpus = \"1,2\"", "cpus = 64", "cpus = [\"1\"]"] {
        let text = std::format!("name='a'\nkernel='k'\n{bad}");
        assert_eq!(reason(&text).0, 3, "{bad}");
    }
}

#[test]
fn a_value_missing_at_the_end_of_a_line_is_reported_on_that_line() {
    // The newline that ends line 2 is the token found instead of the value or the '=': the
    // error names line 2, not the line after it.
    let a = parse("name='a'\nkernel=\nmemory=64").unwrap_err();
    let b = parse("name='a'\nkernel\nmemory=64").unwrap_err();
    assert_eq!((a.line, b.line), (2, 2), "{a:?} {b:?}");
    // A list item missing: the token in its place, here ']' after a trailing ',' on line 4.
    let e = parse("name='a'\nkernel='k'\ndisk=['a',\n]x").unwrap_err();
    assert_eq!(e.line, 4, "{e:?}");
    // An unclosed list: at the end of the text.
    let e = parse("name='a'\nkernel='k'\ndisk=['a',\n").unwrap_err();
    assert_eq!(e.line, 4, "{e:?}");
}

#[test]
fn a_ramdisk_or_a_maxmem_above_memory_is_refused_not_ignored() {
    let base = "name='a'\nkernel='k'\nmemory=64\n";
    let e = parse(&format!("{base}ramdisk='initrd'\n")).unwrap_err();
    assert_eq!(e.line, 4, "{e:?}");
    assert!(matches!(e.reason, Reason::Unsupported { key: "ramdisk", .. }), "{e:?}");
    for maxmem in [128, 32] {
        let e = parse(&format!("{base}maxmem={maxmem}\n")).unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        assert!(matches!(e.reason, Reason::Unsupported { key: "maxmem", .. }), "{e:?}");
    }
    let ok = DomainConfig::parse(&format!("{base}maxmem=64\n"), false).unwrap();
    assert_eq!(ok.config.memory_mib, 64);
    assert!(ok.warnings.is_empty(), "maxmem = memory is known: {:?}", ok.warnings);
}
