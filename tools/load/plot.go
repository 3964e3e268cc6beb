package load

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colors of the plots' lines.
var (
	colBlue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	colOrange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	colGreen  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	colRed    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// Line is one named series of a plot.
type Line struct {
	Name   string
	XY     plotter.XYs
	Color  color.Color
	Dashed bool
}

// Panel is one plot of a figure.
type Panel struct {
	Title, X, Y string
	Lines       []Line
	// Marks are vertical lines at these x values (faults, phases).
	Marks []Mark
}

// Mark is a labelled vertical line.
type Mark struct {
	X     float64
	Label string
}

// WritePNG draws panels stacked vertically into a PNG file.
func WritePNG(path, title string, panels []Panel) error {
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Title
		if i == 0 && title != "" {
			p.Title.Text = title + "\n" + pn.Title
		}
		p.X.Label.Text, p.Y.Label.Text = pn.X, pn.Y
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Y.Min = 0
		ymax := 0.0
		for _, ln := range pn.Lines {
			if len(ln.XY) == 0 {
				continue
			}
			l, err := plotter.NewLine(ln.XY)
			if err != nil {
				return fmt.Errorf("plot %s: %w", ln.Name, err)
			}
			l.Color = ln.Color
			l.Width = vg.Points(1.5)
			if ln.Dashed {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(l)
			p.Legend.Add(ln.Name, l)
			for _, pt := range ln.XY {
				ymax = max(ymax, pt.Y)
			}
		}
		for _, m := range pn.Marks {
			l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: 0}, {X: m.X, Y: ymax * 1.05}})
			if err != nil {
				return err
			}
			l.Color = color.Gray{Y: 140}
			l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(l)
			if m.Label != "" {
				lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.X, Y: ymax * 1.05}}, Labels: []string{m.Label}})
				if err == nil {
					for i := range lb.TextStyle {
						lb.TextStyle[i].Font.Size = vg.Points(7)
					}
					p.Add(lb)
				}
			}
		}
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(vg.Points(720), vg.Points(float64(260*len(panels))))
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Points(10), PadTop: vg.Points(6),
		PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// PlotRun writes the run's throughput and latency over time as a PNG,
// with marks (faults, phase changes) if given.
func PlotRun(path, title string, series []Second, marks []Mark) error {
	var deliv, acks, dp50, dp99, ap99 plotter.XYs
	for _, s := range series {
		deliv = append(deliv, plotter.XY{X: s.T, Y: float64(s.Deliveries)})
		acks = append(acks, plotter.XY{X: s.T, Y: float64(s.Acks)})
		if s.Deliveries > 0 {
			dp50 = append(dp50, plotter.XY{X: s.T, Y: s.DelivP50Ms})
			dp99 = append(dp99, plotter.XY{X: s.T, Y: s.DelivP99Ms})
		}
		if s.Acks > 0 {
			ap99 = append(ap99, plotter.XY{X: s.T, Y: s.AckP99Ms})
		}
	}
	return WritePNG(path, title, []Panel{
		{Title: "throughput", X: "seconds", Y: "per second", Marks: marks, Lines: []Line{
			{Name: "deliveries/s", XY: deliv, Color: colBlue},
			{Name: "acks/s", XY: acks, Color: colOrange},
		}},
		{Title: "latency", X: "seconds", Y: "ms", Marks: marks, Lines: []Line{
			{Name: "op-to-delivery p50", XY: dp50, Color: colGreen},
			{Name: "op-to-delivery p99", XY: dp99, Color: colRed},
			{Name: "ack p99", XY: ap99, Color: colOrange, Dashed: true},
		}},
	})
}

// PhaseMarks marks where each phase of a series begins.
func PhaseMarks(series []Second) []Mark {
	var out []Mark
	prev := ""
	for _, s := range series {
		if s.Phase != prev && s.Phase != "idle" && s.Phase != "end" {
			out = append(out, Mark{X: s.T - 1, Label: s.Phase})
		}
		prev = s.Phase
	}
	return out
}
