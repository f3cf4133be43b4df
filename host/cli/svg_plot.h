// A small line chart as SVG text: log2 x axis (batch sizes), linear y axis from zero,
// one coloured line with markers per series, and a legend. Hand-written: no plotting
// library, readable in any browser.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sectorcrypt::cli {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x > 0, y >= 0)
};

std::string render_line_chart_svg(const std::string& title, const std::string& x_label,
                                  const std::string& y_label,
                                  const std::vector<PlotSeries>& series);

}  // namespace sectorcrypt::cli
