"""The regions S grows (nets.Precursor), on one image at a time: the pixels a seed reaches through
steps between similar 4-neighbours within a number of rounds, and the best product of freeness
along a path to each.

A round of growing sweeps every row, then every column: a reached pixel extends along its run (the
open pixels its row or column joins to it through similar steps). Paths with many turns need many
rounds, so a capped number of rounds can stop short of the whole connected component. The
component itself comes from scipy.ndimage.label (on a grid of twice the resolution, a step at the
cell between its pixels, where a step between two open pixels is not similar), once for every seed
whose gates are the same; the rounds then run in the component's bounding box and stop once it is
reached whole. Where some pixels of a region are only partly free, the best path to each is a
shortest path (scipy.sparse.csgraph.dijkstra) over -log freeness within what the seed reaches.
A labelling and a round are O(H W), the paths O(H W log H W), whatever the image.
"""

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


class StepGraph:
    """One image's steps between similar 4-neighbours, and the components and runs of its open
    pixels. similar_y: [H-1, W] bool, pixel (y, x) and (y+1, x) are similar; similar_x: [H, W-1]."""

    def __init__(self, similar_y: np.ndarray, similar_x: np.ndarray):
        self.similar_y, self.similar_x = similar_y, similar_x
        self.shape = similar_x.shape[0], similar_y.shape[1]
        self.open = None  # the gates of the last labelling, kept while they stay the same
        self.labellings = 0  # how many times the image was labelled: a labelling is O(H W)

    def reach(self, open_: np.ndarray, seed: int, rounds: int) -> np.ndarray:
        """[H, W] bool: the seed and the open pixels ([H, W] bool) it reaches in `rounds` rounds of
        growing. The seed itself may be closed: S starts there all the same (a path through it is
        no better than one from it)."""
        self._label(open_)
        H, W = self.shape
        y, x = divmod(seed, W)
        across = [
            p
            for p, step in (
                ((y, x - 1), x > 0 and self.similar_x[y, x - 1]),
                ((y, x + 1), x + 1 < W and self.similar_x[y, x]),
            )
            if step and open_[p]
        ]
        along = [
            p
            for p, step in (
                ((y - 1, x), y > 0 and self.similar_y[y - 1, x]),
                ((y + 1, x), y + 1 < H and self.similar_y[y, x]),
            )
            if step and open_[p]
        ]
        ids = sorted({self.labels[p] for p in [(y, x), *across, *along]} - {0})  # the components the seed joins
        component = np.isin(self.labels, ids)  # one pass over the image, however many components it has
        component[y, x] = True
        rows, columns = np.flatnonzero(component.any(1)), np.flatnonzero(component.any(0))
        box = slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)  # its bounding box
        top, left = box[0].start, box[1].start
        component = component[box]
        size = int(self.sizes[ids].sum()) + (not open_[y, x])
        runs = [run_ids[box] - run_ids[box].min() for run_ids in (self.row_runs, self.column_runs)]
        reached = np.zeros(component.shape, dtype=bool)
        reached[y - top, x - left] = True
        self.rounds = 0  # how many rounds this seed took
        while self.rounds < rounds and reached.sum() < size:
            before = reached.sum()
            for run_ids, steps in zip(runs, (across, along)):
                # a closed seed is a run of its own: its first round steps off it as an open one would
                for py, px in steps if self.rounds == 0 else []:
                    reached[py - top, px - left] = True
                hit = np.zeros(run_ids.max() + 1, dtype=bool)
                hit[run_ids[reached]] = True
                reached = hit[run_ids] & component
            self.rounds += 1
            if reached.sum() == before:
                break
        region = np.zeros(self.shape, dtype=bool)
        region[box] = reached
        return region

    def best_paths(self, region: np.ndarray, free: np.ndarray, seed: int) -> np.ndarray:
        """[H, W] float64: within region ([H, W] bool, what the seed reaches), the max over paths
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
        # explicit zeros are steps too
        graph = csr_matrix((cost[targets], (index[sources], index[targets])), shape=(len(inside), len(inside)))
        distance = dijkstra(graph, directed=True, indices=index[seed])
        paths = np.zeros(H * W)
        paths[inside] = np.exp(-distance)
        return paths.reshape(H, W)

    def _label(self, open_: np.ndarray) -> None:
        """Component ids ([H, W], 0 where closed), their sizes, and row and column run ids
        of the open pixels."""
        if self.open is not None and np.array_equal(open_, self.open):
            return
        H, W = self.shape
        split_y = ~self.similar_y & open_[:-1] & open_[1:]  # dissimilar steps between open pixels
        split_x = ~self.similar_x & open_[:, :-1] & open_[:, 1:]
        if split_y.any() or split_x.any():
            grid = np.zeros((2 * H - 1, 2 * W - 1), dtype=bool)  # pixels at even cells, steps between them
            grid[::2, ::2] = open_
            grid[1::2, ::2] = self.similar_y
            grid[::2, 1::2] = self.similar_x
            self.labels = np.ascontiguousarray(ndimage.label(grid)[0][::2, ::2])  # 4-connected: pixel, step, pixel
        else:  # every step between open pixels is similar: the pixels alone decide
            self.labels = ndimage.label(open_)[0]
        # where a run starts: a closed pixel, or a pixel its predecessor does not step to
        starts = np.ones((H, W), dtype=bool)
        starts[:, 1:] = ~(self.similar_x & open_[:, :-1] & open_[:, 1:])
        self.row_runs = np.cumsum(starts.ravel()).reshape(H, W)
        starts[:] = True
        starts[1:] = ~(self.similar_y & open_[:-1] & open_[1:])
        self.column_runs = np.cumsum(starts.T.ravel()).reshape(W, H).T
        self.sizes = np.bincount(self.labels.ravel())
        self.open, self.labellings = open_.copy(), self.labellings + 1
