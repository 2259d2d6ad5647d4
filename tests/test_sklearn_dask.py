"""scikit-learn searches over lamina's estimators scale out through joblib's Dask backend: a
GridSearchCV on a local cluster of two worker processes finds the same best parameters and
scores as n_jobs=1, and each worker's lamina runs on one thread."""

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="needs scikit-learn: pip install lamina[sklearn]")
distributed = pytest.importorskip("dask.distributed", reason='needs dask: pip install "dask[distributed]"')

import joblib  # noqa: E402  (after the skips)
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from lamina.sklearn import MLPClassifier  # noqa: E402


def _worker_threads():
    import lamina as lm

    return lm.get_num_threads()


def _search(n_jobs):
    x, y = load_iris(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    grid = {"hidden_layer_sizes": [(8,), (16,)], "learning_rate_init": [1e-2, 3e-2]}
    search = GridSearchCV(MLPClassifier(max_iter=30, random_state=0), grid, cv=3, n_jobs=n_jobs)
    return search.fit(x, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a short search, on purpose
def test_a_grid_search_on_a_dask_cluster_matches_n_jobs_1_with_one_thread_per_worker():
    want = _search(n_jobs=1)
    with distributed.LocalCluster(n_workers=2, processes=True, host="127.0.0.1", threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        threads = client.run(_worker_threads)
        with joblib.parallel_backend("dask"):
            got = _search(n_jobs=-1)
    assert sorted(threads.values()) == [1, 1]
    assert got.best_params_ == want.best_params_
    np.testing.assert_array_equal(got.cv_results_["mean_test_score"], want.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(got.cv_results_["split0_test_score"], want.cv_results_["split0_test_score"])
