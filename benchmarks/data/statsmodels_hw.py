"""statsmodels Holt-Winters (additive damped trend, additive season m) under a rolling origin:
parameters re-fitted every EVERY steps on the last WINDOW points, a one-step forecast at every
point of the last 20%, MASE against the seasonal naive MAE (lag m) of the first 80%.

    python3 -m venv /tmp/sm && /tmp/sm/bin/pip install statsmodels pandas numpy
    /tmp/sm/bin/python statsmodels_hw.py nyc_taxi.csv 48 2016 48      # about 10 minutes

Measured 2026-11-28 (statsmodels 0.15.0 from PyPI): nyc_taxi m=48 window 2016 every 48: 0.3170;
expanding window, every 96: 0.3134; ambient m=24 window 1008 every 24: 0.5471.
"""
import sys, numpy as np, pandas as pd, warnings
warnings.filterwarnings("ignore")
from statsmodels.tsa.holtwinters import ExponentialSmoothing
path, m, window, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
y = pd.read_csv(path)['value'].values.astype(float)
n=len(y); tr=int(np.floor(0.8*n))
scale=np.mean(np.abs(y[m:tr]-y[:tr-m]))
errs=[]; params=None
for t in range(tr, n):
    lo=max(0,t-window)
    hist=y[lo:t]
    if (t-tr)%every==0:
        fit=ExponentialSmoothing(hist, trend='add', damped_trend=True, seasonal='add', seasonal_periods=m).fit()
        params=dict(fit.params)
        f=fit.forecast(1)[0]
    else:
        # Between re-fits: the smoothing parameters stay, the states are re-run over the window.
        fit=ExponentialSmoothing(hist, trend='add', damped_trend=True, seasonal='add', seasonal_periods=m).fit(
            smoothing_level=params['smoothing_level'], smoothing_trend=params['smoothing_trend'],
            smoothing_seasonal=params['smoothing_seasonal'], damping_trend=params['damping_trend'], optimized=False)
        f=fit.forecast(1)[0]
    errs.append(abs(y[t]-f))
print(path, 'm',m,'window',window,'every',every,'MASE',np.mean(errs)/scale)
