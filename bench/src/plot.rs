//! The picture of a run (`--plot FILE.svg`): setup time against the number of containers
//! already present, one line per backend, and each backend's teardown distribution.

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use crate::exec::Result;
use crate::report::BackendReport;

const PALETTE: [RGBColor; 7] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// Writes the SVG. Setup lines are a running median (window N/50) so that one slow call does
/// not hide the trend; the teardown panel is the cumulative distribution.
pub fn write(path: &std::path::Path, machine: &str, backends: &[&BackendReport]) -> Result<()> {
    let root = SVGBackend::new(path, (1280, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let root = root
        .titled(machine, ("sans-serif", 14))
        .map_err(draw_error)?;
    let (left, right) = root.split_horizontally(700);
    setup_panel(&left, backends)?;
    teardown_panel(&right, backends)?;
    root.present().map_err(draw_error)
}

fn setup_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    backends: &[&BackendReport],
) -> Result<()> {
    let n = backends.iter().map(|b| b.setup_ms.len()).max().unwrap_or(0);
    let window = (n / 50).max(3).min(n.max(1));
    let lines: Vec<Vec<(usize, f64)>> = backends
        .iter()
        .map(|b| running_median(&b.setup_ms, window))
        .collect();
    let (low, high) = bounds(lines.iter().flatten().map(|&(_, y)| y));
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("setup (running median of {window}) against containers present"),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..n, (low..high).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("containers already set up on the host (per backend)")
        .y_desc("setup ms (log)")
        .draw()
        .map_err(draw_error)?;
    for (i, (b, line)) in backends.iter().zip(lines).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(b.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    legend(&mut chart)
}

fn teardown_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    backends: &[&BackendReport],
) -> Result<()> {
    let (low, high) = bounds(backends.iter().flat_map(|b| b.teardown_ms.iter().copied()));
    let mut chart = ChartBuilder::on(area)
        .caption("teardown: share of calls done within", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((low..high).log_scale(), 0.0..1.0)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("teardown ms (log)")
        .y_desc("share of calls")
        .draw()
        .map_err(draw_error)?;
    for (i, b) in backends.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                cumulative(&b.teardown_ms),
                colour.stroke_width(2),
            ))
            .map_err(draw_error)?
            .label(b.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    legend(&mut chart)
}

fn legend<'a, X, Y>(chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)
}

/// The median of each sample's window of `window` samples ending at it.
fn running_median(samples: &[f64], window: usize) -> Vec<(usize, f64)> {
    (0..samples.len())
        .map(|i| {
            let mut w = samples[i.saturating_sub(window - 1)..=i].to_vec();
            w.sort_by(f64::total_cmp);
            (i, w[w.len() / 2])
        })
        .collect()
}

/// Points (x, share of samples <= x), sorted by x.
fn cumulative(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, x)| (x, (i + 1) as f64 / n))
        .collect()
}

/// A log axis's range around the values (positive, with some room).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high {
        (0.1, 1.0)
    } else {
        (low * 0.8, high * 1.25)
    }
}

fn draw_error(e: impl std::fmt::Display) -> String {
    format!("cannot draw the plot: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_median_follows_a_step_and_ignores_one_spike() {
        let mut samples = vec![1.0; 10];
        samples.extend([5.0; 10]);
        samples[4] = 100.0;
        let line = running_median(&samples, 3);
        assert_eq!(
            line[4].1, 1.0,
            "one spike in a window of 3 is not the median"
        );
        assert_eq!(line[0].1, 1.0);
        assert_eq!(line[19].1, 5.0);
    }

    #[test]
    fn cumulative_ends_at_one_and_is_sorted() {
        let c = cumulative(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(c.first(), Some(&(1.0, 0.25)));
        assert_eq!(c.last(), Some(&(4.0, 1.0)));
    }
}
