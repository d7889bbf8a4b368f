/* Charts.  The SVG is written by hand (it is only text); the heatmap is
 * drawn with image.c's primitives and font and saved through
 * image_write_png. */
#include <config.h>

#include "plot.h"

#include "atomic_file.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------ loss chart */

/* The chart's frame in SVG user units. */
enum {
    SVG_WIDTH = 640,
    SVG_HEIGHT = 400,
    FRAME_LEFT = 80,
    FRAME_RIGHT = 610,
    FRAME_TOP = 50,
    FRAME_BOTTOM = 330,
    TICK_LENGTH = 5,
    TARGET_TICKS = 5,
    MARKER_LIMIT = 40,  /* dots on the points when they are few enough to tell apart */
};

static const char curve_color[] = "#1f77b4";

struct axis {
    double low, high, step;  /* ticks at low, low + step, ..., high */
    int decimals;            /* what the tick labels need to tell ticks apart */
};

/* Ticks 1, 2 or 5 times a power of ten apart, about TARGET_TICKS of them,
 * with the range widened to whole steps.  A range of one value is widened
 * first, so that it still has a scale. */
static struct axis nice_axis(double min, double max, double min_step)
{
    struct axis a;
    double magnitude, fraction;

    if (!(max > min)) {
        const double pad = min != 0 ? fabs(min) / 10 : 1;
        min -= pad;
        max += pad;
    }
    a.step = (max - min) / TARGET_TICKS;
    magnitude = pow(10, floor(log10(a.step)));
    fraction = a.step / magnitude;
    a.step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
    if (a.step < min_step)
        a.step = min_step;
    a.low = floor(min / a.step) * a.step;
    a.high = ceil(max / a.step) * a.step;
    a.decimals = a.step >= 1 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
    return a;
}

static size_t tick_count(const struct axis *a)
{
    return (size_t)lround((a->high - a->low) / a->step) + 1;
}

/* Computed from the index rather than summed, so that rounding does not
 * build up; and never -0. */
static double tick_value(const struct axis *a, size_t i)
{
    const double value = a->low + (double)i * a->step;
    return fabs(value) < a->step / 2 ? 0 : value;
}

static double to_x(const struct axis *a, double value)
{
    return FRAME_LEFT + (value - a->low) / (a->high - a->low) * (FRAME_RIGHT - FRAME_LEFT);
}

static double to_y(const struct axis *a, double value)
{
    return FRAME_BOTTOM - (value - a->low) / (a->high - a->low) * (FRAME_BOTTOM - FRAME_TOP);
}

static void write_xml_text(FILE *out, const char *text)
{
    for (; *text; text++)
        switch (*text) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: putc(*text, out);
        }
}

static void write_svg_start(FILE *out, const char *title)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT);
    fputs("<title>", out);
    write_xml_text(out, title);
    fputs("</title>\n", out);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_WIDTH, SVG_HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"16\">",
            (FRAME_LEFT + FRAME_RIGHT) / 2, FRAME_TOP / 2 + 6);
    write_xml_text(out, title);
    fputs("</text>\n", out);
}

/* Tick marks and labels below the frame, one per epoch step. */
static void write_x_axis(FILE *out, const struct axis *x)
{
    fprintf(out, "<g stroke=\"black\">\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
            FRAME_LEFT, FRAME_BOTTOM, FRAME_RIGHT, FRAME_BOTTOM);
    for (size_t i = 0; i < tick_count(x); i++) {
        const double px = to_x(x, tick_value(x, i));
        fprintf(out, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n", px, FRAME_BOTTOM,
                px, FRAME_BOTTOM + TICK_LENGTH);
    }
    fputs("</g>\n<g text-anchor=\"middle\">\n", out);
    for (size_t i = 0; i < tick_count(x); i++)
        fprintf(out, "<text x=\"%.2f\" y=\"%d\">%.*f</text>\n", to_x(x, tick_value(x, i)),
                FRAME_BOTTOM + TICK_LENGTH + 14, x->decimals, tick_value(x, i));
    fprintf(out, "</g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n",
            (FRAME_LEFT + FRAME_RIGHT) / 2, FRAME_BOTTOM + 45);
}

/* Tick marks, labels and faint grid lines across the frame. */
static void write_y_axis(FILE *out, const struct axis *y, const char *label)
{
    fprintf(out, "<g stroke=\"black\">\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
            FRAME_LEFT, FRAME_TOP, FRAME_LEFT, FRAME_BOTTOM);
    for (size_t i = 0; i < tick_count(y); i++) {
        const double py = to_y(y, tick_value(y, i));
        fprintf(out, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n",
                FRAME_LEFT - TICK_LENGTH, py, FRAME_LEFT, py);
        fprintf(out, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                FRAME_LEFT + 1, py, FRAME_RIGHT, py);
    }
    fputs("</g>\n<g text-anchor=\"end\">\n", out);
    for (size_t i = 0; i < tick_count(y); i++)
        fprintf(out, "<text x=\"%d\" y=\"%.2f\">%.*f</text>\n", FRAME_LEFT - TICK_LENGTH - 3,
                to_y(y, tick_value(y, i)) + 4, y->decimals, tick_value(y, i));
    fprintf(out, "</g>\n<text transform=\"translate(%d %d) rotate(-90)\" "
                 "text-anchor=\"middle\">",
            20, (FRAME_TOP + FRAME_BOTTOM) / 2);
    write_xml_text(out, label);
    fputs("</text>\n", out);
}

/* The points of the curve, in order; NaN values are epochs without one
 * (not evaluated), which the line passes by.  Returns how many were drawn. */
static size_t write_points(FILE *out, const double *value, size_t count, const struct axis *x,
                           const struct axis *y, const char *format)
{
    size_t drawn = 0;
    for (size_t i = 0; i < count; i++)
        if (!isnan(value[i]))
            fprintf(out, format, drawn++ ? " " : "", to_x(x, (double)i), to_y(y, value[i]));
    return drawn;
}

static void write_curve(FILE *out, const double *value, size_t count, const struct axis *x,
                        const struct axis *y)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                 "stroke-linejoin=\"round\" points=\"", curve_color);
    const size_t drawn = write_points(out, value, count, x, y, "%s%.2f,%.2f");
    fputs("\"/>\n", out);
    if (drawn > MARKER_LIMIT)
        return;
    fprintf(out, "<g fill=\"%s\">\n", curve_color);
    write_points(out, value, count, x, y, "%s<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"/>\n");
    fputs("</g>\n", out);
}

static void write_chart_svg(FILE *out, const double *value, size_t count, double min,
                            double max, const char *title, const char *y_label)
{
    /* one epoch still gets an axis from 0 to 1 */
    const struct axis x = nice_axis(0, count > 1 ? (double)(count - 1) : 1, 1);
    const struct axis y = nice_axis(min, max, 0);

    write_svg_start(out, title);
    write_y_axis(out, &y, y_label);  /* first, so that the x axis covers the lowest grid line */
    write_x_axis(out, &x);
    write_curve(out, value, count, &x, &y);
    fputs("</svg>\n", out);
}

/* The chart of value[0 .. count), NaN where `gaps` allows one. */
static int plot_chart_svg(const char *path, const double *value, size_t count, bool gaps,
                          const char *title, const char *y_label, struct error *err)
{
    struct atomic_file f;
    double min = INFINITY, max = -INFINITY;

    for (size_t i = 0; i < count; i++) {
        if (gaps && isnan(value[i]))
            continue;
        if (!isfinite(value[i]))
            return error_set(err, "%s: the %s at epoch %zu is %g, which cannot be plotted", path,
                             y_label, i, value[i]);
        min = fmin(min, value[i]);
        max = fmax(max, value[i]);
    }
    if (min > max)
        return error_set(err, "%s: no %s values to plot", path, y_label);
    if (!isfinite(max - min))  /* the scale would overflow */
        return error_set(err, "%s: the %s spans too wide a range to plot (%g to %g)", path,
                         y_label, min, max);
    if (atomic_file_open(&f, path, err) != 0)
        return -1;
    write_chart_svg(f.stream, value, count, min, max, title, y_label);
    return atomic_file_commit(&f, err);
}

int plot_loss_svg(const char *path, const double *loss, size_t count, const char *title,
                  struct error *err)
{
    return plot_chart_svg(path, loss, count, false, title, "loss", err);
}

int plot_accuracy_svg(const char *path, const double *accuracy, size_t count,
                      const char *title, struct error *err)
{
    return plot_chart_svg(path, accuracy, count, true, title, "test accuracy (%)", err);
}

/* ------------------------------------------------------------ confusion table */

struct confusion_totals {
    size_t row[PLOT_CLASSES], column[PLOT_CLASSES];
    size_t all, correct;
};

static struct confusion_totals sum_confusion(const size_t matrix[PLOT_CLASSES][PLOT_CLASSES])
{
    struct confusion_totals t = {{0}, {0}, 0, 0};

    for (size_t truth = 0; truth < PLOT_CLASSES; truth++) {
        for (size_t predicted = 0; predicted < PLOT_CLASSES; predicted++) {
            t.row[truth] += matrix[truth][predicted];
            t.column[predicted] += matrix[truth][predicted];
        }
        t.all += t.row[truth];
        t.correct += matrix[truth][truth];
    }
    return t;
}

static int decimal_digits(size_t n)
{
    int digits = 1;
    while (n >= 10) {
        n /= 10;
        digits++;
    }
    return digits;
}

/* An accuracy column entry: "-" for a class with no images. */
static void print_accuracy(FILE *out, size_t correct, size_t total)
{
    if (total)
        fprintf(out, "  %8.2f%%\n", 100.0 * (double)correct / (double)total);
    else
        fprintf(out, "  %9s\n", "-");
}

void plot_confusion_print(FILE *out, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES])
{
    const struct confusion_totals t = sum_confusion(matrix);
    const int width = decimal_digits(t.all) + 1;          /* every count fits */
    const int total_width = width > 6 ? width : 6;        /* and the word "total" */

    fputs("Confusion matrix: rows are true labels, columns predicted labels.\n", out);
    fprintf(out, "%-5s", "true");
    for (int predicted = 0; predicted < PLOT_CLASSES; predicted++)
        fprintf(out, " %*d", width, predicted);
    fprintf(out, " %*s  %9s\n", total_width, "total", "accuracy");
    for (int truth = 0; truth < PLOT_CLASSES; truth++) {
        fprintf(out, "%-5d", truth);
        for (int predicted = 0; predicted < PLOT_CLASSES; predicted++)
            fprintf(out, " %*zu", width, matrix[truth][predicted]);
        fprintf(out, " %*zu", total_width, t.row[truth]);
        print_accuracy(out, matrix[truth][truth], t.row[truth]);
    }
    fprintf(out, "%-5s", "total");
    for (int predicted = 0; predicted < PLOT_CLASSES; predicted++)
        fprintf(out, " %*zu", width, t.column[predicted]);
    fprintf(out, " %*zu", total_width, t.all);
    print_accuracy(out, t.correct, t.all);
}

int plot_confusion_text(const char *path, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES],
                        struct error *err)
{
    struct atomic_file f;

    if (atomic_file_open(&f, path, err) != 0)
        return -1;
    plot_confusion_print(f.stream, matrix);
    return atomic_file_commit(&f, err);
}

/* ------------------------------------------------------------ heatmap */

enum { GRID_LINE = 160, COUNT_SCALE = 1 };

static const char heatmap_title[] = "rows: true, columns: predicted";

/* White for none of the row, black for all of it. */
static uint8_t cell_shade(size_t count, size_t row_total)
{
    return row_total ? (uint8_t)(255 - lround(255.0 * (double)count / (double)row_total)) : 255;
}

/* The cell's interior lies inside its top and left grid lines. */
static void draw_cell(struct gray_image *img, size_t left, size_t top, size_t count,
                      size_t row_total)
{
    const size_t inside = PLOT_CONFUSION_CELL - 1;
    const uint8_t shade = cell_shade(count, row_total);
    char text[24];
    size_t text_width;

    image_fill(img, left + 1, top + 1, inside, inside, shade);
    snprintf(text, sizeof text, "%zu", count);
    text_width = image_text_width(text, COUNT_SCALE);
    if (text_width + 2 > inside)  /* keep a pixel clear on each side */
        return;
    image_draw_text(img, left + 1 + (inside - text_width) / 2,
                    top + 1 + (inside - IMAGE_FONT_HEIGHT * COUNT_SCALE) / 2, text_width, text,
                    COUNT_SCALE, shade < 128 ? 255 : 0);
}

static void draw_digit_labels(struct gray_image *img)
{
    const size_t label_width = IMAGE_FONT_WIDTH * PLOT_CONFUSION_LABEL_SCALE;
    const size_t label_height = IMAGE_FONT_HEIGHT * PLOT_CONFUSION_LABEL_SCALE;

    for (size_t digit = 0; digit < PLOT_CLASSES; digit++) {
        const char text[2] = {(char)('0' + digit), '\0'};
        const size_t offset = digit * PLOT_CONFUSION_CELL;
        image_draw_text(img, PLOT_CONFUSION_LEFT + offset + (PLOT_CONFUSION_CELL - label_width) / 2,
                        PLOT_CONFUSION_TOP - PLOT_CONFUSION_MARGIN - label_height, label_width,
                        text, PLOT_CONFUSION_LABEL_SCALE, 0);
        image_draw_text(img, PLOT_CONFUSION_MARGIN,
                        PLOT_CONFUSION_TOP + offset + (PLOT_CONFUSION_CELL - label_height) / 2,
                        label_width, text, PLOT_CONFUSION_LABEL_SCALE, 0);
    }
}

int plot_confusion_image(struct gray_image *out, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES],
                         struct error *err)
{
    const struct confusion_totals t = sum_confusion(matrix);
    const size_t grid_side = PLOT_CLASSES * PLOT_CONFUSION_CELL + 1;

    if (image_create(out, PLOT_CONFUSION_WIDTH, PLOT_CONFUSION_HEIGHT, 255, err) != 0)
        return -1;
    image_draw_text(out, PLOT_CONFUSION_LEFT, PLOT_CONFUSION_MARGIN, grid_side, heatmap_title, 1,
                    0);
    draw_digit_labels(out);
    /* the grid lines are what the cells leave of this */
    image_fill(out, PLOT_CONFUSION_LEFT, PLOT_CONFUSION_TOP, grid_side, grid_side, GRID_LINE);
    for (size_t truth = 0; truth < PLOT_CLASSES; truth++)
        for (size_t predicted = 0; predicted < PLOT_CLASSES; predicted++)
            draw_cell(out, PLOT_CONFUSION_LEFT + predicted * PLOT_CONFUSION_CELL,
                      PLOT_CONFUSION_TOP + truth * PLOT_CONFUSION_CELL,
                      matrix[truth][predicted], t.row[truth]);
    return 0;
}

int plot_confusion_png(const char *path, const size_t matrix[PLOT_CLASSES][PLOT_CLASSES],
                       struct error *err)
{
    struct gray_image img;
    int rc = plot_confusion_image(&img, matrix, err);

    if (rc == 0)
        rc = image_write_png(path, &img, err);
    gray_image_free(&img);
    return rc;
}
