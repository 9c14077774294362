//! Tables of results as a header and rows of cells, rendered as aligned
//! text columns, RFC 4180 CSV or Markdown.

/// A header and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Column names.
    pub header: Vec<String>,
    /// One row of cells per item.
    pub rows: Vec<Vec<String>>,
}

impl Listing {
    /// A listing with these column names.
    pub fn new(header: &[&str], rows: Vec<Vec<String>>) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        }
    }

    /// Left-aligned columns under the header.
    pub fn to_table(&self) -> String {
        let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
        super::format_table(&header, &self.rows)
    }

    /// RFC 4180 CSV with a header row.
    pub fn to_csv(&self) -> String {
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| {
                row.iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            })
            .collect()
    }

    /// A Markdown table (pipes in cells escaped, line breaks made spaces).
    pub fn to_markdown(&self) -> String {
        let line = |row: &[String]| {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.replace('|', "\\|").replace(['\r', '\n'], " "))
                .collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let rule = vec!["---".to_string(); self.header.len()];
        let mut out = line(&self.header) + &line(&rule);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}
