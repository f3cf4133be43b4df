// SVG line chart for `sectorcrypt compare --plot`.
#include "host/cli/svg_plot.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, so that about `n` steps cover `max`.
double nice_step(double max, int n) {
  const double raw = max / n;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

}  // namespace

std::string render_line_chart_svg(const std::string& title, const std::string& x_label,
                                  const std::string& y_label,
                                  const std::vector<PlotSeries>& series) {
  constexpr double W = 760, H = 460, L = 80, R = 170, T = 50, B = 60;
  const double pw = W - L - R, ph = H - T - B;
  double xmin = 1e300, xmax = 0, ymax = 0;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  }
  if (xmax <= 0) xmin = xmax = 1;
  if (xmax == xmin) xmax = xmin * 2;
  if (ymax <= 0) ymax = 1;
  const double lx0 = std::log2(xmin), lx1 = std::log2(xmax);
  const double ystep = nice_step(ymax, 6);
  const double ytop = std::ceil(ymax / ystep) * ystep;
  auto px = [&](double x) { return L + (std::log2(x) - lx0) / (lx1 - lx0) * pw; };
  auto py = [&](double y) { return T + ph - y / ytop * ph; };

  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
      W, H, W, H, L + pw / 2, escape(title));
  // Grid and y ticks.
  for (double y = 0; y <= ytop + ystep / 2; y += ystep) {
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:g}</text>\n",
        L, py(y), L + pw, py(y), L - 6, py(y) + 4, y);
  }
  // x ticks at powers of two; labelled every other one when crowded.
  const int first = static_cast<int>(std::ceil(lx0 - 1e-9)), last = static_cast<int>(std::floor(lx1 + 1e-9));
  const int every = (last - first) > 12 ? 2 : 1;
  for (int e = first; e <= last; ++e) {
    const double x = std::ldexp(1.0, e);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>\n",
                       px(x), T, T + ph);
    if ((e - first) % every == 0) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(x),
                         T + ph + 18, format_size_short(static_cast<uint64_t>(x)));
    }
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n"
      "<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">{}</text>\n",
      L, T, pw, ph, L + pw / 2, H - 18, escape(x_label), T + ph / 2, T + ph / 2, escape(y_label));
  // Series and legend.
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* c = colors[i % std::size(colors)];
    std::string pts;
    for (const auto& [x, y] : series[i].points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", c, pts);
    for (const auto& [x, y] : series[i].points) {
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", px(x), py(y), c);
    }
    const double ly = T + 10 + 22.0 * static_cast<double>(i);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        L + pw + 14, ly, L + pw + 40, ly, c, L + pw + 46, ly + 4, escape(series[i].name));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace sectorcrypt::cli
