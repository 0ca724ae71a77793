"""engine.dispersion.area against the unmodified EPA AERMOD v24142 outputs in tests/data/aermod.

Targets (issue 3): PERIOD within 2 % at >= 95 % of receptors whose AERMOD value exceeds 1 % of
the case maximum and within 10 % at all of them; hourly values at the discrete receptors within
5 %; exact zeros upwind.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.dispersion.area import AreaSources, area_concentrations, convolve, period_average, period_kernel
from engine.errors import InputError
from engine.dispersion.met import read_aermet

DATA = Path(__file__).parent / "data" / "aermod"
CASES = ["caseA_single", "caseA_single_h1", "caseB_3x3", "caseC_20x20_timing"]


def read_pst(path):
    """Tiny POSTFILE (PLOT format) parser: X, Y, CONC and the DATE/NUM HRS column."""
    xs, ys, cs, ds = [], [], [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("*") or not line.strip():
            continue
        t = line.split()
        xs.append(float(t[0]))
        ys.append(float(t[1]))
        cs.append(float(t[2]))
        ds.append(int(t[8]))
    return np.array(xs), np.array(ys), np.array(cs), np.array(ds)


def read_case(case):
    """Sources (LOCATION/SRCPARAM lines) and met file names from the control file."""
    loc, par, files = {}, {}, {}
    for line in (DATA / case / "aermod.inp").read_text().splitlines():
        t = line.split()
        if not t:
            continue
        if t[0] == "LOCATION":
            loc[t[1]] = (float(t[3]), float(t[4]))
        elif t[0] == "SRCPARAM":
            par[t[1]] = [float(v) for v in t[2:8]]
        elif t[0] in ("SURFFILE", "PROFFILE"):
            files[t[0]] = (DATA / case / t[1]).resolve()
    ids = list(loc)
    p = np.array([par[i] for i in ids])
    src = AreaSources([loc[i][0] for i in ids], [loc[i][1] for i in ids], p[:, 2], p[:, 3],
                      angle_deg=p[:, 4], rate_g_m2_s=p[:, 0], release_height_m=p[:, 1],
                      initial_sigma_z_m=p[:, 5])
    return src, read_aermet(files["SURFFILE"], files["PROFFILE"])


@pytest.fixture(scope="module")
def computed():
    cache = {}

    def get(case):
        if case not in cache:
            src, met = read_case(case)
            x, y, c_ref, _ = read_pst(DATA / case / "period_all.pst")
            hourly = area_concentrations(src, x, y, met)
            cache[case] = (src, met, x, y, c_ref, hourly)
        return cache[case]

    return get


def relative_errors(ours, ref):
    sel = ref > 0.01 * ref.max()
    return np.abs(ours[sel] / ref[sel] - 1.0)


@pytest.mark.parametrize("case", CASES)
def test_period_matches_aermod(case, computed):
    src, met, x, y, ref, hourly = computed(case)
    ours = period_average(hourly, met)
    err = relative_errors(ours, ref)
    assert err.size > 100
    # issue 3 targets; we are ~0.1 % (AERMOD's own Romberg tolerance is 1 %)
    assert np.mean(err <= 0.02) >= 0.95
    assert err.max() <= 0.10
    assert np.median(err) <= 0.005


@pytest.mark.parametrize("case", CASES)
def test_exact_zeros_upwind(case, computed):
    src, met, x, y, ref, hourly = computed(case)
    ours = period_average(hourly, met)
    if case == "caseC_20x20_timing":
        # rotating wind: every AERMOD zero is a receptor no cell reaches in any hour
        assert np.array_equal(ours == 0.0, ref == 0.0)
    else:
        west = src.x_sw_m.min()
        upwind = x <= west  # wind from 270 in every hour
        assert (ref[upwind] == 0.0).all()
        assert (ours[upwind] == 0.0).all()


@pytest.mark.parametrize("case", ["caseA_single", "caseA_single_h1", "caseB_3x3"])
def test_hourly_discrete_receptors(case, computed):
    src, met, x, y, ref_period, hourly = computed(case)
    xh, yh, ch, dh = read_pst(DATA / case / "hourly_all.pst")
    labels = json.loads((DATA / case / "receptors.json").read_text())
    nd = len(labels) if isinstance(labels, list) else len(labels["receptors"])
    n_rec = x.size
    ref = ch.reshape(len(met), n_rec)
    ours = hourly
    disc = slice(n_rec - nd, n_rec)
    r, o = ref[:, disc], ours[:, disc]
    # skip far-lateral values < 1 % of the hour's maximum: there AERMOD's 4-decimal CDF table
    # truncated at 3.9 sigma decides (docs/aermod-formulation.md §4: 71.5 vs exact-Phi 80.4 ug/m3 at 1e-5 of peak)
    big = r > 0.01 * ref.max(axis=1, keepdims=True)
    rel = np.abs(o[big] / r[big] - 1.0)
    assert rel.max() <= 0.05
    assert np.all(o[r == 0.0][(x[disc][None, :].repeat(len(met), 0)[r == 0.0]) <= src.x_sw_m.min()] == 0.0)


@pytest.mark.parametrize("case", ["caseA_single", "caseA_single_h1", "caseB_3x3"])
def test_hourly_discrete_receptors_aermod_table(case):
    """With AERMOD's tabulated lateral CDF every hourly discrete value is within 5 % of
    AERMOD's, the far-lateral tail included (issue 3, literally), and AERMOD's zeros are
    zeros; with the exact CDF the tail is off (e.g. 80.4 vs 71.5 in case A hour 1)."""
    src, met = read_case(case)
    labels = json.loads((DATA / case / "receptors.json").read_text())
    _, _, ch, _ = read_pst(DATA / case / "hourly_all.pst")
    ref = ch.reshape(len(met), -1)[:, -len(labels):]
    rx = np.array([d["x"] for d in labels])
    ry = np.array([d["y"] for d in labels])
    ours = area_concentrations(src, rx, ry, met, lateral_cdf="aermod_table")
    ours[~met.valid] = 0.0  # AERMOD writes 0 for calm and missing hours
    nz = ref > 0
    assert np.abs(ours[nz] / ref[nz] - 1.0).max() <= 0.05
    assert np.all(ours[~nz] == 0.0)
    if case == "caseA_single":
        j = [d["label"] for d in labels].index("edge+1000_y+half+1000")
        exact = area_concentrations(src, rx[j:j + 1], ry[j:j + 1], met)[0, 0]
        assert ref[0, j] == pytest.approx(71.4699, rel=1e-6)
        assert ours[0, j] == pytest.approx(71.6, abs=0.05)  # docs/aermod-formulation.md §4: table re-computation
        assert exact == pytest.approx(80.4, abs=0.05)


def test_direct_equals_gridded(computed):
    src, met, x, y, ref, _ = computed("caseB_3x3")
    grid = slice(0, 41 * 41, 7)  # a lattice subset keeps the direct path quick
    d = area_concentrations(src, x[grid], y[grid], met, method="direct")
    g = area_concentrations(src, x[grid], y[grid], met, method="gridded")
    big = np.abs(d) > 1e-9 * np.abs(d).max()
    np.testing.assert_allclose(g[big], d[big], rtol=1e-6)  # issue 3: one transfer function
    assert np.array_equal(d == 0, g == 0)


def test_gridded_gather_equals_whole_field_convolution(computed, monkeypatch):
    """The gridded path sums the offset kernels at the lattice receptors only; above
    GATHER_MAX_TERMS it convolves the whole field per hour instead. Both give the same values
    (the same terms; the FFT of large grids to round-off) and the same zeros."""
    import engine.dispersion.area as disp

    src, met, x, y, ref, _ = computed("caseB_3x3")
    gather = area_concentrations(src, x, y, met, method="gridded", lateral_cdf="aermod_table")
    monkeypatch.setattr(disp, "GATHER_MAX_TERMS", 0)
    field = area_concentrations(src, x, y, met, method="gridded", lateral_cdf="aermod_table")
    big = np.abs(field) > 1e-12 * np.abs(field).max()
    np.testing.assert_allclose(gather[big], field[big], rtol=1e-12)
    assert np.array_equal(gather == 0, field == 0)
    assert (gather > 0).any() and (gather == 0).any()


def test_period_kernel_and_convolve_reproduce_block(computed):
    src, met, x, y, ref, hourly = computed("caseB_3x3")
    K = period_kernel(met, cell_size_m=1000.0, spacing_m=250.0, n_half=26)
    field = convolve(K, np.ones((3, 3)), stride=4)
    # field[oy, ox] <-> lattice point (oy - 26, ox - 26) from the SW cell centre (-1000, -1000)
    ours = period_average(hourly, met)
    sel = (np.abs(x) <= 5000) & (x % 250 == 0) & (y % 250 == 0)
    ix = ((x[sel] + 1000) / 250).astype(int) + 26
    iy = ((y[sel] + 1000) / 250).astype(int) + 26
    inside = (ix >= 0) & (iy >= 0) & (ix < field.shape[1]) & (iy < field.shape[0])
    np.testing.assert_allclose(field[iy[inside], ix[inside]], ours[sel][inside], rtol=1e-6,
                               atol=1e-9 * ours.max())


def test_period_average_excludes_calm_and_missing():
    met = read_aermet(DATA / "met" / "synth5.sfc", DATA / "met" / "synth5.pfl")
    calm = met.select(slice(None))
    object.__setattr__(calm, "calm", np.array([True, False, False, False, False]))
    hourly = np.arange(10.0).reshape(5, 2)
    hourly[0] = 0.0
    # EPA calms policy: divide by the 4 non-calm hours, not 5
    np.testing.assert_allclose(period_average(hourly, calm), hourly[1:].mean(axis=0))


@pytest.mark.parametrize("kw, name", [
    (dict(x_len_m=-5.0), "x_len_m"),
    (dict(y_len_m=0.0), "y_len_m"),
    (dict(rate_g_m2_s=np.nan), "rate_g_m2_s"),
    (dict(release_height_m=-1.0), "release_height_m"),
    (dict(initial_sigma_z_m=-0.1), "initial_sigma_z_m"),
    (dict(angle_deg=400.0), "angle_deg"),
])
def test_bad_source_parameters(kw, name):
    args = dict(x_sw_m=[0.0], y_sw_m=[0.0], x_len_m=10.0, y_len_m=10.0)
    args.update(kw)
    with pytest.raises(InputError, match=name) as info:
        AreaSources(**args)
    assert "allowed range" in str(info.value)


def test_bad_method_and_receptors():
    met = read_aermet(DATA / "met" / "synth5.sfc")
    src = AreaSources([0.0], [0.0], 10.0, 10.0)
    with pytest.raises(InputError, match="method"):
        area_concentrations(src, [1.0], [1.0], met, method="fast")
    with pytest.raises(InputError, match="receptor"):
        area_concentrations(src, [1.0, 2.0], [1.0], met)
    with pytest.raises(InputError, match="gridded"):
        area_concentrations(AreaSources([0.0], [0.0], 10.0, 10.0, angle_deg=30.0), [1.0], [1.0], met,
                            method="gridded")
    with pytest.raises(InputError, match="cell_size_m"):
        period_kernel(met, cell_size_m=-1.0, spacing_m=1.0, n_half=2)
    with pytest.raises(InputError, match="lateral_cdf must be one of .'aermod_table', 'exact'."):
        area_concentrations(src, [1.0], [1.0], met, lateral_cdf="table")
    with pytest.raises(InputError, match="lateral_cdf"):
        period_kernel(met, cell_size_m=1.0, spacing_m=1.0, n_half=2, lateral_cdf=None)


# --------------------------------------------------------------------------- polygon sources
def test_areacirc_as_aermod_builds_it():
    """GENCIR: the 20-gon of the circle's area, first vertex due north, clockwise. caseE's
    CIRC1 (R = 800 m at (2000, 1800)): R' = 800 sqrt(2 pi / (20 sin 18 deg)) = 806.63 m
    (data README), first vertex (2000, 2606.63), second at 18 deg east of north."""
    from engine.dispersion.area import polygon_area_centroid, regular_polygon_vertices

    x, y = regular_polygon_vertices(2000.0, 1800.0, 800.0, 20)
    assert (x[0], y[0]) == pytest.approx((2000.0, 2606.63), abs=0.01)
    assert x[1] > 2000.0 and (x[1] - 2000.0) == pytest.approx(806.63 * np.sin(np.radians(18)), abs=0.01)
    area, cx, cy = polygon_area_centroid(x, y)
    assert abs(area) == pytest.approx(np.pi * 800.0**2, rel=1e-12)
    assert (cx, cy) == pytest.approx((2000.0, 1800.0), abs=1e-9)


def test_rotated_area_vertices_as_aermod_aparm():
    """RECT1 of caseE (SW corner (1000, -3000), 500 x 1500 m, angle 30 deg clockwise): AERMOD's
    vertices (1000, -3000), (1750.0, -1701.0), (2183.0, -1951.0), (1433.0, -3250.0) as printed
    to 0.1 m in the data README; the Yinit side points 30 deg east of north."""
    from engine.dispersion.area import rectangle_vertices

    x, y = rectangle_vertices(1000.0, -3000.0, 500.0, 1500.0, 30.0)
    got = sorted(zip(np.round(x, 0), np.round(y, 0)))
    assert got == sorted([(1000.0, -3000.0), (1750.0, -1701.0), (2183.0, -1951.0), (1433.0, -3250.0)])


def test_polygon_equals_rectangle_and_l_shape_equals_two_cells():
    """The polygon integral reproduces the rectangle kernel for a rotated square (either vertex
    orientation) and, for a non-convex L, the sum of the two rectangles it is made of."""
    from engine.dispersion.area import PolygonSources, polygon_concentrations, rectangle_vertices

    met = read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")
    rx = np.array([600.0, -300.0, 0.0, 1500.0, 3000.0, 200.0])
    ry = np.array([0.0, 100.0, 0.0, 500.0, -1000.0, 2000.0])
    rect = area_concentrations(AreaSources([-500.0], [-500.0], [1000.0], [1000.0], angle_deg=[20.0]),
                               rx, ry, met, lateral_cdf="aermod_table", method="direct")
    x, y = rectangle_vertices(-500.0, -500.0, 1000.0, 1000.0, 20.0)
    for xs, ys in ((x, y), (x[::-1], y[::-1])):
        poly = polygon_concentrations(PolygonSources([(xs, ys)]), rx, ry, met)
        np.testing.assert_allclose(poly, rect, rtol=1e-9, atol=1e-12 * rect.max())
    lx = np.array([0.0, 2000.0, 2000.0, 1000.0, 1000.0, 0.0])
    ly = np.array([0.0, 0.0, 1000.0, 1000.0, 2000.0, 2000.0])
    ell = polygon_concentrations(PolygonSources([(lx, ly)]), rx, ry, met)
    two = area_concentrations(AreaSources([0.0, 0.0], [0.0, 1000.0], [2000.0, 1000.0], [1000.0, 1000.0]),
                              rx, ry, met, lateral_cdf="aermod_table", method="direct")
    big = two > 1e-4 * two.max()
    np.testing.assert_allclose(ell[big], two[big], rtol=1e-4)


def test_polygon_sources_reject_degenerate_input():
    from engine.dispersion.area import PolygonSources

    with pytest.raises(InputError, match="zero area"):
        PolygonSources([([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])])
    with pytest.raises(InputError, match=">= 3 vertices"):
        PolygonSources([([0.0, 1.0], [0.0, 1.0])])
    with pytest.raises(InputError, match="rate_g_m2_s"):
        PolygonSources([([0.0, 1.0, 0.0], [0.0, 0.0, 1.0])], rate_g_m2_s=[-1.0])


def test_flagpole_heights_vertical_profile():
    """A ground-level source seen from flagpole receptors: the concentration falls with height
    inside the source (caseE POLY1 PERIOD, AERMOD: 39.26 at 0 m, 29.55 at 2 m, 16.46 at 10 m,
    3.14 at 30 m, data README); z = 0 through receptor_z_m equals the default."""
    met = read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")
    src = AreaSources([-500.0], [-500.0], [1000.0], [1000.0])
    z = np.array([0.0, 2.0, 10.0, 30.0])
    c = period_average(area_concentrations(src, np.zeros(4), np.zeros(4), met, receptor_z_m=z), met)
    assert np.all(np.diff(c) < 0)
    c0 = period_average(area_concentrations(src, np.zeros(1), np.zeros(1), met), met)
    assert c[0] == pytest.approx(c0[0], rel=1e-12)
    with pytest.raises(InputError, match="receptor_z_m"):
        area_concentrations(src, [0.0], [0.0], met, receptor_z_m=[-1.0])


def test_urban_boundary_layer_hand_values():
    """URBCALC for the reference population (P = 2e6, so ZIURB = 400 m and dT = 12 K) in
    synth24 hour 01 (stable: u* 0.205, L 50, zim 213.3, z0 0.5, T 288.15 K), derived by hand:
    rho = 101325 / (287.04 x 288.15) = 1.22505 kg/m3; H_urb = 0.03 x 12 x 0.205 x 1.22505 x
    1004 = 90.771 W/m2; w*_urb = (9.80616 / 288.15 / 1.22505 / 1004 x 90.771 x 400)^(1/3)
    = 1.00153 m/s; 7 max(z0_urb, z0) = 7 m; u*_urb = max(0.205, 1.00153 sqrt(1.6 (7/400)^(2/3))
    / (1.3 sqrt(1 - 7/400))) = 0.25525 m/s; L_urb = -(1.22505 x 1004 x 288.15 x 0.25525^3)
    / (0.4 x 9.80616 x 90.771) = -16.55 m -> max(16.55, 50) = 50 m; zi = max(400, 213.3) =
    400 m. Urban sigma-w at 20 m (<= 0.1 ZIURB): sqrt(1.6 (20/400)^(2/3)) x 1.00153 =
    0.46671 m/s, sigma-v sqrt(0.35) x 1.00153, each added in quadrature."""
    from kernels import plume

    gsv = np.zeros(plume.NLEV)
    gsw = np.zeros(plume.NLEV)
    urbstab, zi, ustar, L = plume._urban_boundary_layer(2.0e6, 1.0, True, np.nan, 213.3, 213.3,
                                                        0.205, 50.0, 0.5, 288.15, gsv, gsw)
    assert urbstab and zi == 400.0 and L == 50.0
    assert ustar == pytest.approx(0.25525, rel=1e-4)
    k = int(np.flatnonzero(plume.GRID_HEIGHTS == 20.0)[0])
    assert gsw[k] == pytest.approx(0.46671, rel=1e-4)
    assert gsv[k] == pytest.approx(np.sqrt(0.35) * 1.00153, rel=1e-4)
    # convective hour with zic above ZIURB: rural (no morning transition), profiles untouched
    gsw[:] = 0.0
    urbstab, zi, _, _ = plume._urban_boundary_layer(2.0e6, 1.0, False, 500.0, 686.9, 686.9, 0.447,
                                                    -80.0, 0.5, 298.15, gsv, gsw)
    assert not urbstab and zi == 686.9 and np.all(gsw == 0.0)


def test_period_kernel_urban_option():
    """period_kernel(urban_population=...) for the national run's urban option: 0 is the
    rural kernel exactly; a city of 2 million lowers the near-field period kernel of a
    stable-hour mix (the urban boundary layer is deeper and more turbulent at night)."""
    met = read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")
    kw = dict(cell_size_m=1000.0, spacing_m=500.0, n_half=6)
    rural = period_kernel(met, **kw)
    np.testing.assert_array_equal(period_kernel(met, urban_population=0.0, **kw), rural)
    urban = period_kernel(met, urban_population=2.0e6, **kw)
    assert urban[6, 6] < 0.95 * rural[6, 6]
    with pytest.raises(InputError, match="urban_population"):
        period_kernel(met, urban_population=-1.0, **kw)
