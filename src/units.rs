//! Quantities as people read them: sizes in binary units, durations in the unit that fits,
//! changes as signed percentages. Shared by every report and by the messages of the measuring
//! engines.

/// `12.3 KiB`-style sizes (binary units, as browsers' dev tools show them).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Signed percentage change from `before` to `after`, e.g. `−54 %`.
pub fn format_change(before: u64, after: u64) -> String {
    if before == 0 {
        return "n/a".into();
    }
    let percent = (after as f64 - before as f64) / before as f64 * 100.0;
    let sign = if percent < 0.0 { "−" } else { "+" };
    format!("{sign}{:.0} %", percent.abs())
}

/// `12.3 µs`, `2.50 ms` or `3.20 s`.
pub fn format_duration_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else if us >= 1.0 || us == 0.0 {
        format!("{us:.1} µs")
    } else {
        // Below a microsecond one decimal of µs hides everything: a 64-byte copy, a tiny kernel.
        format!("{:.0} ns", us * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_people_write_them() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(42_188), "41.2 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(format_change(42_188, 19_354), "−54 %");
        assert_eq!(format_change(100, 110), "+10 %");
        assert_eq!(format_duration_us(0.035), "35 ns");
        assert_eq!(format_duration_us(1.25), "1.2 µs");
        assert_eq!(format_duration_us(12.34), "12.3 µs");
        assert_eq!(format_duration_us(2500.0), "2.50 ms");
        assert_eq!(format_duration_us(3_200_000.0), "3.20 s");
    }
}
