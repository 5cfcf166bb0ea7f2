// CPU kernels of the fused IoU-family losses: value and gradient per box pair, in one pass.
//
// A line-by-line transcription of focal_eiou_d2/layers/fused_iou.py: the same operations in the
// same order, so that every result is bit for bit the one of that code compiled by
// torch.compile, NaN and infinities included (tests/layers/test_cpu_kernel.py checks it).
// Written as a scalar loop over pairs that the compiler vectorizes, loading the interleaved
// (x1, y1, x2, y2) boxes with vector permutes where torch.compile's kernel gathers them one
// value at a time.
//
// Build flags (cpu_kernel.py): -O3 -march=native -fopenmp -ffp-contract=off -fno-math-errno.
// No fused multiply-add (it would round differently) and no fast-math.
#include <cmath>
#include <cstdint>
#include <limits>

namespace {

// torch.maximum and torch.minimum where neither operand is NaN (see run and axis_geometry).
template <typename T> inline T maximum(T a, T b) { return a > b ? a : b; }
template <typename T> inline T minimum(T a, T b) { return a < b ? a : b; }

// fused_iou._non_negative and _pass_if_non_negative.
template <typename T> inline T non_negative(T extent) { return extent < T(0) ? T(0) : extent; }
template <typename T> inline T pass_if_non_negative(T extent, T grad) {
  return extent < T(0) ? T(0) : grad;
}

// fused_iou._share: d max(a, b) / da as autograd defines it.
template <typename T> inline T share(T a, T b) {
  return a > b ? T(1) : (a == b ? T(0.5) : T(0));
}

template <typename T> struct Axis {
  T low, high, low_gt, high_gt, side_raw, side, side_gt, overlap_raw, overlap, enclosing_raw,
      enclosing, offset;
};

template <bool Exact, typename T>
inline Axis<T> axis_geometry(T low, T high, T low_gt, T high_gt) {
  Axis<T> a;
  a.low = low;
  a.high = high;
  a.low_gt = low_gt;
  a.high_gt = high_gt;
  a.side_raw = high - low;
  a.overlap_raw = minimum(high, high_gt) - maximum(low, low_gt);
  a.enclosing_raw = maximum(high, high_gt) - minimum(low, low_gt);
  // Exact: NaN where torch.maximum or torch.minimum would return it, i.e. for any NaN here.
  if (Exact && (std::isunordered(low, low_gt) || std::isunordered(high, high_gt))) {
    a.overlap_raw = a.enclosing_raw = std::numeric_limits<T>::quiet_NaN();
  }
  a.side = non_negative(a.side_raw);
  a.side_gt = non_negative(high_gt - low_gt);
  a.overlap = non_negative(a.overlap_raw);
  a.enclosing = non_negative(a.enclosing_raw);
  a.offset = (low + high - low_gt - high_gt) / T(2);
  return a;
}

template <typename T> struct Pair {
  Axis<T> x, y;
  T intersection, union_, union_eps, iou, centre_distance_sq;
};

// fused_iou.pair_geometry; boxes are XYXY.
template <bool Exact, typename T>
inline Pair<T> pair_geometry(const T* pred, const T* target, T eps) {
  Pair<T> p;
  p.x = axis_geometry<Exact>(pred[0], pred[2], target[0], target[2]);
  p.y = axis_geometry<Exact>(pred[1], pred[3], target[1], target[3]);
  p.intersection = p.x.overlap * p.y.overlap;
  p.union_ = p.x.side * p.y.side + p.x.side_gt * p.y.side_gt - p.intersection;
  p.union_eps = p.union_ + eps;
  p.iou = p.intersection / p.union_eps;
  p.centre_distance_sq = p.x.offset * p.x.offset + p.y.offset * p.y.offset;
  return p;
}

// fused_iou.Partials; the defaults are the Python float 0.0 of that class.
template <typename T> struct Partials {
  T iou = T(0), union_ = T(0), side_x = T(0), side_y = T(0), enclosing_x = T(0),
    enclosing_y = T(0), centre = T(0);

  Partials scaled(T factor) const {
    Partials s;
    s.iou = factor * iou;
    s.union_ = factor * union_;
    s.side_x = factor * side_x;
    s.side_y = factor * side_y;
    s.enclosing_x = factor * enclosing_x;
    s.enclosing_y = factor * enclosing_y;
    s.centre = factor * centre;
    return s;
  }
};

// fused_iou._axis_gradient: dL/d(low, high) of the predicted box.
template <typename T>
inline void axis_gradient(const Axis<T>& a, T d_side, T d_overlap, T d_enclosing, T d_centre,
                          T* d_low, T* d_high) {
  d_side = pass_if_non_negative(a.side_raw, d_side);
  d_overlap = pass_if_non_negative(a.overlap_raw, d_overlap);
  d_enclosing = pass_if_non_negative(a.enclosing_raw, d_enclosing);
  T d_offset = d_centre * a.offset;
  T low_share = share(a.low, a.low_gt);
  T high_share = share(a.high_gt, a.high);
  *d_low = d_offset - d_side - low_share * d_overlap - (T(1) - low_share) * d_enclosing;
  *d_high = d_offset + d_side + high_share * d_overlap + (T(1) - high_share) * d_enclosing;
}

// fused_iou.coordinate_gradient; writes dL/d(x1, y1, x2, y2) to grad[0..3].
template <typename T>
inline void coordinate_gradient(const Pair<T>& p, const Partials<T>& q, T* grad) {
  T d_union = q.union_ - q.iou * p.intersection / (p.union_eps * p.union_eps);
  T d_intersection = q.iou / p.union_eps - d_union;
  axis_gradient(p.x, q.side_x + d_union * p.y.side, d_intersection * p.y.overlap, q.enclosing_x,
                q.centre, &grad[0], &grad[2]);
  axis_gradient(p.y, q.side_y + d_union * p.x.side, d_intersection * p.x.overlap, q.enclosing_y,
                q.centre, &grad[1], &grad[3]);
}

// fused_iou._centre_distance_penalty: rho^2 / (c^2 + eps) and the partials of 1 - IoU + that.
template <typename T> inline T centre_distance_penalty(const Pair<T>& p, T eps, Partials<T>* q) {
  T diagonal_eps = p.x.enclosing * p.x.enclosing + p.y.enclosing * p.y.enclosing + eps;
  T penalty = p.centre_distance_sq / diagonal_eps;
  T d_diagonal = T(-2) * penalty / diagonal_eps;
  q->iou = T(-1);
  q->enclosing_x = d_diagonal * p.x.enclosing;
  q->enclosing_y = d_diagonal * p.y.enclosing;
  q->centre = T(1) / diagonal_eps;
  return penalty;
}

// fused_iou._eiou: EIoU (Eq. 7) and its partials.
template <typename T> inline T eiou(const Pair<T>& p, T eps, Partials<T>* q) {
  T loss = T(1) - p.iou + centre_distance_penalty(p, eps, q);
  T enclosing_eps = p.x.enclosing * p.x.enclosing + eps;
  T side_penalty = (p.x.side - p.x.side_gt) * (p.x.side - p.x.side_gt) / enclosing_eps;
  loss = loss + side_penalty;
  q->side_x = T(2) * (p.x.side - p.x.side_gt) / enclosing_eps;
  q->enclosing_x = q->enclosing_x - T(2) * p.x.enclosing * side_penalty / enclosing_eps;
  enclosing_eps = p.y.enclosing * p.y.enclosing + eps;
  side_penalty = (p.y.side - p.y.side_gt) * (p.y.side - p.y.side_gt) / enclosing_eps;
  loss = loss + side_penalty;
  q->side_y = T(2) * (p.y.side - p.y.side_gt) / enclosing_eps;
  q->enclosing_y = q->enclosing_y - T(2) * p.y.enclosing * side_penalty / enclosing_eps;
  return loss;
}

// Each loss: the value of one pair, its partials in *q. Eq. numbers as in fused_iou.py.
struct Iou {
  template <typename T> static T eval(const Pair<T>& p, T, Partials<T>* q) {
    q->iou = T(-1);
    return T(1) - p.iou;  // Eq. 3
  }
};

struct Giou {
  template <typename T> static T eval(const Pair<T>& p, T eps, Partials<T>* q) {
    T enclosing_area = p.x.enclosing * p.y.enclosing;
    T enclosing_eps = enclosing_area + eps;
    T penalty = enclosing_area - p.union_;
    T d_area = T(1) / enclosing_eps - penalty / (enclosing_eps * enclosing_eps);
    q->iou = T(-1);
    q->union_ = T(-1) / enclosing_eps;
    q->enclosing_x = d_area * p.y.enclosing;
    q->enclosing_y = d_area * p.x.enclosing;
    return T(1) - p.iou + penalty / enclosing_eps;  // Eq. 4
  }
};

struct Diou {
  template <typename T> static T eval(const Pair<T>& p, T eps, Partials<T>* q) {
    return T(1) - p.iou + centre_distance_penalty(p, eps, q);  // Eq. 5 without alpha v
  }
};

struct Eiou {
  template <typename T> static T eval(const Pair<T>& p, T eps, Partials<T>* q) {
    return eiou(p, eps, q);  // Eq. 7
  }
};

// Focal-EIoU (Eq. 10) with gamma = 0.5: the weight IoU^0.5 is a square root, as torch.pow and
// torch.compile compute it.
struct FocalEiouHalf {
  template <typename T> static T eval(const Pair<T>& p, T eps, Partials<T>* q) {
    T loss = eiou(p, eps, q);
    T weight = std::sqrt(p.iou);
    *q = q->scaled(weight);
    return weight * loss;  // Eq. 10
  }
};

// One pair; returns whether its loss is NaN, which it is if one of its coordinates is NaN (the
// union is NaN then). Exact: NaN coordinates are handled as torch does.
template <typename Loss, bool Exact, typename T>
inline int pair_loss(const T* pred, const T* target, T eps, T* loss, T* grad, int64_t i) {
  Pair<T> p = pair_geometry<Exact>(pred + 4 * i, target + 4 * i, eps);
  Partials<T> q;
  T value = Loss::eval(p, eps, &q);
  loss[i] = value;
  coordinate_gradient(p, q, grad + 4 * i);
  return value != value;
}

template <typename Loss, bool Exact, typename T>
int run_pass(const T* pred, const T* target, T eps, T* loss, T* grad, int64_t n, int threads) {
  int any_nan = 0;
  // Two loops rather than an OpenMP if clause: with one, GCC 12 leaves the serial case scalar.
  if (threads > 1 && n >= 4096) {
#pragma omp parallel for simd num_threads(threads) schedule(static) reduction(| : any_nan)
    for (int64_t i = 0; i < n; ++i) {
      any_nan |= pair_loss<Loss, Exact>(pred, target, eps, loss, grad, i);
    }
  } else {
#pragma omp simd reduction(| : any_nan)
    for (int64_t i = 0; i < n; ++i) {
      any_nan |= pair_loss<Loss, Exact>(pred, target, eps, loss, grad, i);
    }
  }
  return any_nan;
}

// torch.maximum and torch.minimum return NaN for a NaN operand; checking that in every max and
// min costs a fifth of the time, so the first pass ignores it and only records whether a loss
// came out NaN (as it does for any NaN coordinate); only then a second pass, which handles NaN
// exactly, computes the whole batch again.
template <typename Loss, typename T>
void run(const T* pred, const T* target, double eps, T* loss, T* grad, int64_t n, int threads) {
  const T eps_t = static_cast<T>(eps);
  if (run_pass<Loss, false>(pred, target, eps_t, loss, grad, n, threads)) {
    run_pass<Loss, true>(pred, target, eps_t, loss, grad, n, threads);
  }
}

}  // namespace

// Entry points: pred, target: (n, 4) contiguous XYXY; loss: (n,); grad: (n, 4) = dL/dpred.
#define FOCAL_EIOU_D2_KERNEL(name, Loss)                                                     \
  extern "C" void name##_float(const float* pred, const float* target, double eps,          \
                               float* loss, float* grad, int64_t n, int threads) {          \
    run<Loss>(pred, target, eps, loss, grad, n, threads);                                   \
  }                                                                                         \
  extern "C" void name##_double(const double* pred, const double* target, double eps,       \
                                double* loss, double* grad, int64_t n, int threads) {       \
    run<Loss>(pred, target, eps, loss, grad, n, threads);                                   \
  }

FOCAL_EIOU_D2_KERNEL(iou, Iou)
FOCAL_EIOU_D2_KERNEL(giou, Giou)
FOCAL_EIOU_D2_KERNEL(diou, Diou)
FOCAL_EIOU_D2_KERNEL(eiou, Eiou)
FOCAL_EIOU_D2_KERNEL(focal_eiou, FocalEiouHalf)
