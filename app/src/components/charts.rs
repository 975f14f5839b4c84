//! Charts drawn as SVG by the app: horizontal bars with their labels and values, and a
//! weekday × hour heatmap. Each has a title and text a screen reader can read.

use leptos::prelude::*;

/// One bar: its label, its value, and the text printed beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

const ROW: f64 = 22.0;
const LABEL: f64 = 190.0;
const WIDTH: f64 = 620.0;
const VALUE: f64 = 90.0;

/// Horizontal bars scaled to `max` (the largest value when `None`).
#[component]
pub fn BarChart(
    #[prop(into)] title: String,
    bars: Vec<Bar>,
    #[prop(optional)] max: Option<f64>,
    #[prop(into, optional)] id: String,
) -> impl IntoView {
    let max = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let height = ROW * bars.len().max(1) as f64 + 8.0;
    let span = WIDTH - LABEL - VALUE;
    let rows = bars
        .into_iter()
        .enumerate()
        .map(|(i, bar)| {
            let y = 4.0 + ROW * i as f64;
            let width = (bar.value / max * span).clamp(0.0, span);
            // 26 characters of 12 px text fit the label column (28 reached past its
            // left edge); the whole label is the bar's tooltip.
            let label = shorten(&bar.label, 26);
            view! {
                <g class="bar">
                    <title>{format!("{}: {}", bar.label, bar.text)}</title>
                    <text x=LABEL - 8.0 y=y + 15.0 text-anchor="end" class="chart-label">{label}</text>
                    <rect x=LABEL y=y + 3.0 width=format!("{width:.1}") height=ROW - 6.0 rx="2" class="chart-bar"></rect>
                    <text x=LABEL + width + 6.0 y=y + 15.0 class="chart-value">{bar.text}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" id=id>
            <figcaption>{title.clone()}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {height}") role="img" aria-label=title width="100%">
                {rows}
            </svg>
        </figure>
    }
    .into_any()
}

fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_string()
    } else {
        let head: String = text.chars().take(most - 1).collect();
        format!("{head}…")
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Counts by weekday (Monday first) and hour, darker where there are more.
#[component]
pub fn Heatmap(#[prop(into)] title: String, grid: Vec<Vec<u64>>) -> impl IntoView {
    let max = grid.iter().flatten().copied().max().unwrap_or(0).max(1);
    let cell = 22.0;
    let left = 40.0;
    let top = 18.0;
    let width = left + cell * 24.0 + 4.0;
    let height = top + cell * 7.0 + 4.0;
    let hours = (0..24)
        .step_by(3)
        .map(|h| {
            view! {
                <text x=left + cell * f64::from(h) + cell / 2.0 y="12" text-anchor="middle" class="chart-label">
                    {format!("{h:02}")}
                </text>
            }
        })
        .collect_view();
    let cells = grid
        .iter()
        .enumerate()
        .flat_map(|(day, hours)| {
            hours.iter().enumerate().map(move |(hour, count)| {
                let share = *count as f64 / max as f64;
                let x = left + cell * hour as f64;
                let y = top + cell * day as f64;
                view! {
                    <rect x=x y=y width=cell - 2.0 height=cell - 2.0 rx="2"
                        class="heat-cell" fill-opacity=format!("{:.3}", 0.06 + share * 0.94)>
                        <title>{format!("{} {hour:02}:00–{hour:02}:59: {count}", DAYS[day])}</title>
                    </rect>
                }
            })
        })
        .collect_view();
    let days = DAYS
        .iter()
        .enumerate()
        .map(|(i, day)| {
            view! {
                <text x=left - 6.0 y=top + cell * i as f64 + 15.0 text-anchor="end" class="chart-label">{*day}</text>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" id="login-heatmap">
            <figcaption>{title.clone()}</figcaption>
            <svg viewBox=format!("0 0 {width} {height}") role="img" aria-label=title width="100%">
                {hours}
                {days}
                {cells}
            </svg>
        </figure>
    }
    .into_any()
}

/// A line over time: `points` are (seconds since the start, value); the axis says the
/// largest value and the span.
#[component]
pub fn LineChart(
    #[prop(into)] title: String,
    points: Vec<(f64, f64)>,
    #[prop(into)] unit: String,
    #[prop(into, optional)] id: String,
) -> impl IntoView {
    const W: f64 = 620.0;
    const H: f64 = 160.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 20.0;
    let span = points.last().map(|p| p.0).unwrap_or(0.0).max(1.0);
    let start = points.first().map(|p| p.0).unwrap_or(0.0).min(span);
    let top = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let x = |t: f64| LEFT + (t - start) / (span - start).max(1.0) * (W - LEFT - 8.0);
    let y = |v: f64| 8.0 + (1.0 - v / top) * (H - BOTTOM - 8.0);
    let line = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    let last = points.last().map(|p| p.1).unwrap_or(0.0);
    let summary = format!(
        "{title}: {} points, latest {last:.0} {unit}, highest {top:.0} {unit}",
        points.len()
    );
    view! {
        <figure class="chart" id=id>
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=summary width="100%">
                <line x1=LEFT y1=H - BOTTOM x2=W - 8.0 y2=H - BOTTOM class="chart-axis"></line>
                <line x1=LEFT y1="8" x2=LEFT y2=H - BOTTOM class="chart-axis"></line>
                <text x=LEFT - 6.0 y="16" text-anchor="end" class="chart-label">{format!("{top:.0}")}</text>
                <text x=LEFT - 6.0 y=H - BOTTOM text-anchor="end" class="chart-label">"0"</text>
                <text x=W - 8.0 y=H - 4.0 text-anchor="end" class="chart-label">{format!("{} s", span.round())}</text>
                <text x=LEFT y=H - 4.0 class="chart-label">{unit.clone()}</text>
                <polyline points=line class="chart-line" fill="none"></polyline>
            </svg>
        </figure>
    }
    .into_any()
}
