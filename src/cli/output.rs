//! Standard output of the commands, which may be a closed pipe.

/// Writes to stdout, exiting quietly when the reader has gone away.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Lays out a table: columns two spaces apart, each as wide as its widest cell, the last one
/// unpadded. Returns the header line first, then one line per row.
pub fn columns<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Vec<String> {
    let rows: Vec<[String; N]> = rows.into_iter().collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        line.trim_end().to_string()
    };
    std::iter::once(line(header))
        .chain(rows.iter().map(|r| line(r.each_ref().map(String::as_str))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let lines = columns(
            ["NAME", "LEVEL", "BY"],
            [
                ["a".to_string(), "private".to_string(), "x".to_string()],
                [
                    "longer-name".to_string(),
                    "public".to_string(),
                    String::new(),
                ],
            ],
        );
        assert_eq!(
            lines,
            [
                "NAME         LEVEL    BY",
                "a            private  x",
                "longer-name  public",
            ]
        );
    }
}
