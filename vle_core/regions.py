"""The regions S grows (nets.Precursor), on one image at a time: the pixels connected to a seed
through steps between similar 4-neighbours, and the best product of freeness along a path there.

Connected components come from scipy.ndimage.label. Where a step between two open pixels is not
similar, the labelling runs on a grid of twice the resolution, a pixel at (2y, 2x) and the step
between two neighbours at the cell between them, so that steps are open or closed by themselves;
otherwise on the pixels alone. One labelling answers every seed whose gates are the same. Where
some pixels of a region are only partly free, the best path to each is a shortest path
(scipy.sparse.csgraph.dijkstra) over -log freeness. Both cost O(H W) (the paths O(H W log H W)),
whatever the image.
"""

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


class StepGraph:
    """One image's steps between similar 4-neighbours, and the components of its open pixels.
    similar_y: [H-1, W] bool, pixel (y, x) and (y+1, x) are similar; similar_x: [H, W-1] bool."""

    def __init__(self, similar_y: np.ndarray, similar_x: np.ndarray):
        self.similar_y, self.similar_x = similar_y, similar_x
        self.shape = similar_x.shape[0], similar_y.shape[1]
        self.open = self.labels = None  # the last labelling ([H, W] component ids, 0: closed), kept while the gates stay the same
        self.labellings = 0  # how many times the image was labelled: the work of `component`

    def component(self, open_: np.ndarray, seed: int) -> np.ndarray:
        """[H, W] bool: the seed and the open pixels ([H, W] bool) it reaches through similar steps
        between open pixels. The seed itself may be closed: S starts there all the same."""
        if self.labels is None or not np.array_equal(open_, self.open):
            self.labels, self.count = self._label(open_)
            self.open, self.labellings = open_.copy(), self.labellings + 1
        H, W = self.shape
        y, x = divmod(seed, W)
        ids = [self.labels[y, x]]  # the seed's component, and those of the neighbours it steps to
        ids += [self.labels[y + 1, x]] if y + 1 < H and self.similar_y[y, x] else []
        ids += [self.labels[y - 1, x]] if y > 0 and self.similar_y[y - 1, x] else []
        ids += [self.labels[y, x + 1]] if x + 1 < W and self.similar_x[y, x] else []
        ids += [self.labels[y, x - 1]] if x > 0 and self.similar_x[y, x - 1] else []
        chosen = np.zeros(self.count + 1, dtype=bool)
        chosen[ids] = True
        chosen[0] = False  # closed pixels
        region = chosen[self.labels]
        region[y, x] = True
        return region

    def _label(self, open_: np.ndarray) -> tuple[np.ndarray, int]:
        """Component ids of the open pixels ([H, W], 0 where closed) and their count."""
        split_y = ~self.similar_y & open_[:-1] & open_[1:]  # dissimilar steps between open pixels
        split_x = ~self.similar_x & open_[:, :-1] & open_[:, 1:]
        if not (split_y.any() or split_x.any()):  # every step between open pixels is open: the pixels alone decide
            return ndimage.label(open_)
        H, W = self.shape
        grid = np.zeros((2 * H - 1, 2 * W - 1), dtype=bool)  # pixels at even cells, steps between them
        grid[::2, ::2] = open_
        grid[1::2, ::2] = self.similar_y
        grid[::2, 1::2] = self.similar_x
        labels, count = ndimage.label(grid)  # 4-connected: a path goes pixel, step, pixel
        return np.ascontiguousarray(labels[::2, ::2]), count

    def best_paths(self, region: np.ndarray, free: np.ndarray, seed: int) -> np.ndarray:
        """[H, W] float64: within region ([H, W] bool, the seed's component), the max over paths
        from the seed of the product of `free` ([H, W] in (0, 1]) over the pixels each path enters
        (not the seed); 0 outside. Dijkstra on -log free, each step weighed by the pixel it enters."""
        H, W = self.shape
        index = np.full(H * W, -1)
        inside = np.flatnonzero(region)
        index[inside] = np.arange(len(inside))
        cost = -np.log(free.astype(np.float64)).ravel()
        pixels = np.arange(H * W).reshape(H, W)
        sources, targets = [], []
        for a, b, similar, both in (
            (pixels[:-1], pixels[1:], self.similar_y, region[:-1] & region[1:]),
            (pixels[:, :-1], pixels[:, 1:], self.similar_x, region[:, :-1] & region[:, 1:]),
        ):
            step = similar & both
            sources += [a[step], b[step]]
            targets += [b[step], a[step]]
        sources, targets = np.concatenate(sources), np.concatenate(targets)
        graph = csr_matrix((cost[targets], (index[sources], index[targets])), shape=(len(inside), len(inside)))  # explicit zeros are steps too
        distance = dijkstra(graph, directed=True, indices=index[seed])
        paths = np.zeros(H * W)
        paths[inside] = np.exp(-distance)
        return paths.reshape(H, W)
