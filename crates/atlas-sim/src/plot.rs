//! Plots of a run, as PNG and SVG: coverage over time, the propagation
//! CDF, and bandwidth per node by message kind.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::SimError;
use super::node::Kind;
use super::record::Record;

type Series = (String, Vec<(f64, f64)>);

struct Chart<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    series: Vec<Series>,
    y_max: Option<f64>,
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let points = c.series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points.clone().map(|p| p.0).fold(1e-9, f64::max);
    let y_max = c
        .y_max
        .unwrap_or_else(|| points.map(|p| p.1).fold(1e-9, f64::max) * 1.05);
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x_desc)
        .y_desc(c.y_desc)
        .draw()
        .map_err(e)?;
    for (i, (name, pts)) in c.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

fn save(out: &Path, stem: &str, c: &Chart) -> Result<(), SimError> {
    let png = out.join(format!("{stem}.png"));
    let svg = out.join(format!("{stem}.svg"));
    let fail = |path: &Path, message: String| SimError::Plot {
        path: path.display().to_string(),
        message,
    };
    draw(BitMapBackend::new(&png, (960, 540)).into_drawing_area(), c).map_err(|m| fail(&png, m))?;
    draw(SVGBackend::new(&svg, (960, 540)).into_drawing_area(), c).map_err(|m| fail(&svg, m))?;
    Ok(())
}

pub fn all(r: &Record, out: &Path) -> Result<(), SimError> {
    save(
        out,
        "coverage",
        &Chart {
            title: "Coverage: fraction of (live node, announced file) pairs held",
            x_desc: "simulated time (s)",
            y_desc: "coverage",
            series: vec![(
                "coverage".into(),
                r.coverage_rows.iter().map(|row| (row.0, row.3)).collect(),
            )],
            y_max: Some(1.0),
        },
    )?;
    let cdf = |col: usize| -> Vec<(f64, f64)> {
        let mut t = r.reach_times(col);
        t.sort_by(f64::total_cmp);
        let n = r.announced_files().max(1) as f64;
        t.iter()
            .enumerate()
            .map(|(i, x)| (*x, (i + 1) as f64 / n))
            .collect()
    };
    save(
        out,
        "propagation_cdf",
        &Chart {
            title: "Propagation: time from announcement to share of live nodes",
            x_desc: "seconds after announcement",
            y_desc: "fraction of files",
            series: vec![
                ("50% of nodes".into(), cdf(0)),
                ("99% of nodes".into(), cdf(1)),
                ("all nodes".into(), cdf(2)),
            ],
            y_max: Some(1.0),
        },
    )?;
    let series = Kind::ALL
        .iter()
        .map(|k| {
            let pts = r
                .bandwidth_rows
                .iter()
                .filter(|row| row.1 == *k)
                .map(|row| (row.0, row.2))
                .collect();
            (k.label().to_string(), pts)
        })
        .collect();
    save(
        out,
        "bandwidth",
        &Chart {
            title: "Bytes sent per node per second, by message kind",
            x_desc: "simulated time (s)",
            y_desc: "bytes / node / s",
            series,
            y_max: None,
        },
    )
}
