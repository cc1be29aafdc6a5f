"""Weather renderings of one scene geometry: clear, snow, rain, fog and night.

Each rendering starts from the same :class:`~causal_tune_ros.synthetic.scene.SceneGeometry` (so labels and
depth never change with the weather) and only changes the image:

* clear: the sunny base image, a trace of aerial haze and sensor noise;
* fog: Koschmieder's model ``I = J t + A (1 - t)``, ``t = exp(-beta d)`` with the per-pixel ray distance ``d``
  from the geometry, under an overcast, slightly desaturated light;
* rain: overcast sky, darker wet surfaces, blurred reflections on the road (the scene mirrored about the
  horizon, stronger at grazing angles and in puddles), light haze and falling streaks;
* snow: snow cover on up-facing surfaces (road with darker tyre tracks, sidewalks, terrain, roofs, car tops,
  foliage), snow caps on the top edges of objects, a white overcast sky, low saturation, haze and flakes;
* night: low ambient light, street lamps and headlights lighting the scene (inverse square, spot cones),
  emissive windows, lamps and vehicle lights with bloom, a gamma curve and shot + read sensor noise.

All of it is vectorised numpy/OpenCV; randomness comes from a generator seeded by (scene seed, condition).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from causal_tune_ros.synthetic.labels import (
    BUILDING,
    BUS,
    CAR,
    FENCE,
    ROAD,
    SIDEWALK,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    TRUCK,
    WALL,
)
from causal_tune_ros.synthetic.noise import noise_window
from causal_tune_ros.synthetic.scene import SceneGeometry
from causal_tune_ros.weather.conditions import CONDITIONS, check_condition

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def condition_rng(seed: int, condition: str) -> np.random.Generator:
    """Generator for one (scene, condition) pair, independent of which other conditions are rendered.

    Raises:
        ConfigError: For an unknown condition.
    """
    check_condition(condition)
    return np.random.default_rng(
        np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFF, CONDITIONS.index(condition), 7])
    )


def render_weather(geom: SceneGeometry, condition: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Render one condition of a scene.

    Args:
        geom: The scene geometry (not modified).
        condition: One of :data:`CONDITIONS`.
        rng: Generator to use; default: :func:`condition_rng` of the scene seed and condition.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Raises:
        ConfigError: For an unknown condition.
    """
    if rng is None:
        rng = condition_rng(geom.seed, condition)
    else:
        check_condition(condition)
    img = _RENDERERS[condition](geom, rng)
    return _to_uint8(img)


# --------------------------------------------------------------------------------------------- helpers
def _to_uint8(img: np.ndarray) -> np.ndarray:
    np.clip(img, 0.0, 1.0, out=img)
    return cv2.convertScaleAbs(img, alpha=255.0)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _saturate(img: np.ndarray, amount: float, gain: float = 1.0) -> np.ndarray:
    """Blend towards grey (``amount`` < 1 desaturates), times ``gain``; a new array."""
    g = _gray(img)
    return cv2.addWeighted(img, amount * gain, cv2.merge([g, g, g]), (1.0 - amount) * gain, 0.0)


# (H, W, 3) x (H, W) and (H, W, 3) x (3,) products broadcast badly in numpy (an inner loop of length 3);
# OpenCV's per-element functions on merged planes and 4-tuples are several times faster.
def _planes(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    return cv2.merge([x, x, x])


def _scalar(color) -> tuple[float, float, float, float]:
    c = [float(v) for v in np.broadcast_to(np.asarray(color, np.float64), (3,))]
    return (c[0], c[1], c[2], 0.0)


def _mul_map(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``img * weight[..., None]`` (new array)."""
    return cv2.multiply(img, _planes(weight))


def _blend(img: np.ndarray, target, weight: np.ndarray) -> np.ndarray:
    """``img + (target - img) * weight[..., None]``; ``target`` an (H, W, 3) image or an RGB colour."""
    w3 = _planes(weight)
    if isinstance(target, np.ndarray) and target.ndim == 3:
        return cv2.add(img, cv2.multiply(cv2.subtract(target, img), w3))
    out = cv2.multiply(img, _planes(1.0 - weight))
    return cv2.add(out, cv2.multiply(w3, _scalar(target)))


def _scale_where(img: np.ndarray, mask: np.ndarray, factor: float) -> np.ndarray:
    """``img`` with the pixels under ``mask`` scaled by ``factor`` (new array)."""
    return _mul_map(img, np.where(mask, np.float32(factor), np.float32(1.0)))


def _haze(img: np.ndarray, geom: SceneGeometry, beta: float, airlight, keep_sky: bool) -> np.ndarray:
    """``I = J t + A (1 - t)`` with ``t = exp(-beta d)``; optionally leave the sky as it is."""
    t = cv2.exp(geom.distance * np.float32(-beta))
    if keep_sky:
        t[geom.sky] = 1.0
    a = _scalar(airlight)
    return cv2.add(cv2.multiply(cv2.subtract(img, a), _planes(t)), a)  # (J - A) t + A


def _sensor_noise(img: np.ndarray, rng: np.random.Generator, read: float, shot: float) -> np.ndarray:
    """Add shot (signal-dependent) and read noise from the cached noise fields."""
    h, w = img.shape[:2]
    sigma = np.maximum(img, 0.0)
    sigma *= np.float32(shot)
    sigma += np.float32(read * read)
    np.sqrt(sigma, out=sigma)
    sigma *= noise_window("rgb", h, w, rng)
    sigma += img
    return sigma


def _fill_sky(
    img: np.ndarray, geom: SceneGeometry, low, high, span: float, tex: np.ndarray | None = None
) -> None:
    """Paint the sky pixels of ``img`` in place: ``low`` at the horizon to ``high`` ``span * H`` rows above.

    Only the band of rows that holds sky is computed. ``tex`` (H, W), if given, multiplies the colour
    (cloud texture).
    """
    rows_with_sky = np.flatnonzero(geom.sky.any(axis=1))
    if not rows_with_sky.size:
        return
    r1 = int(rows_with_sky[-1]) + 1
    rows = np.arange(r1, dtype=np.float32)[:, None]
    t = np.clip((geom.horizon[None, :] - rows) / np.float32(span * geom.height), 0.0, 1.0)
    mask = geom.sky[:r1]
    for k in range(3):
        col = np.float32(low[k]) + np.float32(high[k] - low[k]) * t
        if tex is not None:
            col *= tex[:r1]
        np.copyto(img[:r1, :, k], col, where=mask)


def _overcast_sky(
    img: np.ndarray, geom: SceneGeometry, rng: np.random.Generator, low, high, cloud: float
) -> None:
    """Grey overcast sky, brighter upwards, with soft cloud texture (in place)."""
    tex = noise_window("coarse", geom.height, geom.width, rng) * np.float32(cloud) + np.float32(1.0)
    _fill_sky(img, geom, low, high, 0.9, tex)


# --------------------------------------------------------------------------------------------- conditions
def _clear(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    img = _haze(geom.base, geom, rng.uniform(0.0008, 0.003), geom.sky_colors[0], keep_sky=True)
    return _sensor_noise(img, rng, read=0.006, shot=0.0004)


def _fog(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    visibility = rng.uniform(40.0, 150.0)  # metres (Koschmieder: V = 3.912 / beta)
    beta = 3.912 / visibility
    a = rng.uniform(0.72, 0.88)
    airlight = np.array([a, a + 0.01, a + rng.uniform(0.01, 0.04)], np.float32)
    # No direct sun in fog: flatter, duller light.
    j = _saturate(geom.base, 0.75, rng.uniform(0.75, 0.9))
    img = _haze(j, geom, beta, airlight, keep_sky=False)
    return _sensor_noise(img, rng, read=0.008, shot=0.0005)


def _rain(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    h, w = geom.height, geom.width
    img = _saturate(geom.base, 0.85, rng.uniform(0.62, 0.78))
    wet = geom.raster.gather((geom.raster.normal[:, 2] > 0.7).astype(np.uint8)).view(bool)
    img = _scale_where(img, wet, rng.uniform(0.6, 0.75))  # wet surfaces are darker
    grey = rng.uniform(0.45, 0.62)
    _overcast_sky(img, geom, rng, (grey, grey, grey + 0.02), (grey + 0.08,) * 3, 0.08)

    # Reflections: mirror about the horizon at half resolution, smeared vertically like a rough wet road.
    hs, ws = max(h // 2, 8), max(w // 2, 8)
    small = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA)
    hor = cv2.resize(geom.horizon[None, :] * (hs / h), (ws, 1), interpolation=cv2.INTER_LINEAR)
    map_x = np.broadcast_to(np.arange(ws, dtype=np.float32)[None, :], (hs, ws))
    map_y = (2.0 * hor - np.arange(hs, dtype=np.float32)[:, None]).astype(np.float32)
    refl = cv2.remap(
        small, np.ascontiguousarray(map_x), map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    refl = cv2.GaussianBlur(refl, (0, 0), sigmaX=0.8, sigmaY=3.0)
    refl = cv2.resize(refl, (w, h), interpolation=cv2.INTER_LINEAR)
    labels = geom.labels
    fresnel = np.clip(geom.distance / 60.0, 0.0, 1.0)
    puddles = np.clip(noise_window("coarse", h, w, rng) - rng.uniform(0.6, 1.2), 0.0, 1.0)
    strength = rng.uniform(0.15, 0.3) * (0.35 + 0.65 * fresnel) + 0.5 * puddles
    strength *= np.where(labels == ROAD, 1.0, np.where(labels == SIDEWALK, 0.5, 0.0)).astype(np.float32)
    img = _blend(img, refl, strength)

    img = _haze(img, geom, rng.uniform(0.006, 0.016), (grey,) * 3, keep_sky=True)
    img = _rain_streaks(img, rng)
    return _sensor_noise(img, rng, read=0.01, shot=0.0008)


def _rain_streaks(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    scale = h / 512.0
    layer = np.zeros((h, w), np.uint8)
    wind = rng.uniform(-0.35, 0.35)
    n = int(rng.integers(700, 1800) * (h * w) / (512 * 1024)) + 20
    for intensity, share in ((255, 0.25), (170, 0.35), (110, 0.4)):
        k = max(1, int(n * share))
        x0 = rng.uniform(-0.1 * w, 1.1 * w, k)
        y0 = rng.uniform(-0.1 * h, h, k)
        length = rng.uniform(8.0, 32.0, k) * scale * (intensity / 255.0 + 0.3)
        ang = wind + rng.normal(0.0, 0.04, k)
        x1, y1 = x0 + np.sin(ang) * length, y0 + np.cos(ang) * length
        lines = np.round(
            np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1) * 16
        ).astype(np.int32)
        cv2.polylines(layer, list(lines), False, intensity, 1, cv2.LINE_AA, 4)
    streaks = layer.astype(np.float32)  # anti-aliased lines are soft enough without a blur
    streaks *= np.float32(rng.uniform(0.25, 0.45) / 255.0)
    return _blend(img, 0.85, streaks * np.float32(0.5)) + _planes(streaks * np.float32(0.425))


def _snow(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    h, w = geom.height, geom.width
    ids = geom.raster.ids
    labels = geom.labels
    img = _saturate(geom.base, rng.uniform(0.45, 0.65), rng.uniform(0.8, 0.92))

    # Snow cover: where snow settles, patchy through coarse noise; tyre tracks stay darker on the road.
    cover = geom.raster.gather(geom.raster.snow) * np.clip(
        0.75 + 0.5 * noise_window("coarse", h, w, rng) + rng.uniform(-0.15, 0.15), 0.0, 1.0
    )
    road = np.flatnonzero(labels == ROAD)
    if road.size and geom.lanes:
        # Lanes are evenly spaced: the distance to the nearest lane centre decides the tyre tracks.
        lateral = _lateral(geom).reshape(-1)[road]
        lane_w = geom.lanes[1] - geom.lanes[0] if len(geom.lanes) > 1 else 3.3
        offset = np.abs(np.mod(lateral - geom.lanes[0] + lane_w / 2, lane_w) - lane_w / 2)
        in_track = np.abs(offset - 0.8) < 0.28
        flat = cover.reshape(-1)
        flat[road[in_track]] *= rng.uniform(0.1, 0.35)
    # Caps on the top edges of vertical surfaces (buildings, cars, signs, walls); foliage is patchy instead.
    cap_cls = np.zeros(256, bool)
    cap_cls[[BUILDING, WALL, FENCE, TRAFFIC_LIGHT, TRAFFIC_SIGN, CAR, TRUCK, BUS]] = True
    eligible = cap_cls[labels] & geom.raster.gather((geom.raster.normal[:, 2] < 0.5).astype(np.uint8)).view(
        bool
    )
    edge = np.zeros((h, w), bool)
    edge[1:] = (ids[1:] != ids[:-1]) & eligible[1:]
    band = edge.copy()
    for k in range(1, max(2, round(3 * h / 512))):
        band[k:] |= edge[:-k]
    cover = np.maximum(cover, (band & eligible).astype(np.float32) * np.float32(0.9))
    snow_col = np.array([0.9, 0.92, 0.96], np.float32)
    shade = 1.0 + 0.04 * noise_window("fine", h, w, rng)
    img = cv2.add(_mul_map(img, 1.0 - cover), cv2.multiply(_planes(shade * cover), _scalar(snow_col)))

    s = rng.uniform(0.78, 0.9)
    _overcast_sky(img, geom, rng, (s, s, s + 0.02), (s - 0.06, s - 0.05, s - 0.02), 0.04)
    a = rng.uniform(0.82, 0.92)
    img = _haze(img, geom, rng.uniform(0.008, 0.03), (a, a + 0.01, a + 0.03), keep_sky=True)
    img = _flakes(img, rng)
    return _sensor_noise(img, rng, read=0.008, shot=0.0005)


def _lateral(geom: SceneGeometry) -> np.ndarray:
    """Street-frame y coordinate of the point seen at each pixel."""
    cam = geom.camera
    rx, ry = cam.pixel_rays()
    a = cam.rotation.astype(np.float32)
    return geom.depth * (a[0, 1] * rx + a[1, 1] * ry + a[2, 1]) + np.float32(cam.center[1])


def _flakes(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    area = (h * w) / (512 * 1024)
    # 8-bit layers: drawing and blurring bytes is several times cheaper than float32 at full resolution.
    layer = np.zeros((h, w), np.uint8)
    n = int(rng.integers(2000, 6000) * area) + 20
    layer[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.integers(128, 256, n)
    layer = cv2.GaussianBlur(cv2.dilate(layer, np.ones((2, 2), np.uint8)), (3, 3), 0.7)
    big = np.zeros((h, w), np.uint8)
    scale = h / 512.0
    for _ in range(int(rng.integers(40, 140) * area) + 3):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(big, c, max(1, round(rng.uniform(2.0, 5.0) * scale)), int(rng.integers(100, 230)), -1)
    layer = cv2.add(layer, cv2.GaussianBlur(big, (0, 0), 1.5 * scale + 0.5))
    alpha = layer.astype(np.float32)
    alpha *= np.float32(1.0 / 255.0)
    return _blend(img, 0.97, alpha)


def _night(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    h, w = geom.height, geom.width
    ambient = rng.uniform(0.035, 0.08) * np.array([0.75, 0.85, 1.15], np.float32)
    light = _irradiance(geom, rng)  # (H, W, 3)
    img = cv2.multiply(geom.base, cv2.add(light, _scalar(ambient)))

    # Sky: dark, with a warm glow of city lights near the horizon.
    glow = np.array([0.11, 0.08, 0.07]) * rng.uniform(0.5, 1.2)
    _fill_sky(img, geom, glow, (0.01, 0.013, 0.03), 0.5)

    # Light sources themselves, and their bloom.
    emit = geom.raster.gather(geom.raster.emissive)
    img += emit
    hs, ws = max(h // 4, 4), max(w // 4, 4)
    small = cv2.resize(np.minimum(emit, 3.0), (ws, hs), interpolation=cv2.INTER_AREA)
    bloom = (
        cv2.GaussianBlur(small, (0, 0), 1.5 * hs / 128) * 0.6
        + cv2.GaussianBlur(small, (0, 0), 5.0 * hs / 128) * 0.5
    )
    img += cv2.resize(bloom, (w, h), interpolation=cv2.INTER_LINEAR)

    gain = rng.uniform(1.0, 1.6)
    gamma = rng.uniform(1.15, 1.5)
    img *= np.float32(gain)
    np.clip(img, 0.0, 1.0, out=img)
    img = cv2.pow(img, 1.0 / gamma)
    return _sensor_noise(img, rng, read=rng.uniform(0.012, 0.03), shot=rng.uniform(0.002, 0.006))


def _irradiance(geom: SceneGeometry, rng: np.random.Generator) -> np.ndarray:
    """Light from street lamps and headlights on every pixel, computed at 1/4 resolution and upsampled."""
    h, w = geom.height, geom.width
    f = 4
    ids = geom.raster.ids[::f, ::f]
    cam = geom.camera
    rx, ry = cam.pixel_rays()
    rx, ry = rx[:, ::f], ry[::f]
    depth = geom.depth[::f, ::f]
    a = cam.rotation.astype(np.float32)
    c = cam.center.astype(np.float32)
    pts = [depth * (a[0, k] * rx + a[1, k] * ry + a[2, k]) + c[k] for k in range(3)]
    nrm = [geom.raster.normal[:, k][ids] for k in range(3)]
    total = np.zeros((*ids.shape, 3), np.float32)
    for light in geom.lights:
        lp = [float(v) for v in light.position]  # Python floats: no float64 upcast of the maps
        reach = 100.0 if light.direction is None else 45.0  # far lights only glow (bloom), they light little
        if lp[0] < c[0] - 5.0 or math.hypot(lp[0] - c[0], lp[1] - c[1]) > reach:
            continue
        vx, vy, vz = lp[0] - pts[0], lp[1] - pts[1], lp[2] - pts[2]
        d2 = vx * vx + vy * vy + vz * vz + 0.25
        inv = 1.0 / np.sqrt(d2)
        lambert = np.maximum(0.0, (nrm[0] * vx + nrm[1] * vy + nrm[2] * vz) * inv)
        e = lambert * np.float32(light.power) / d2
        if light.direction is not None:
            dvec = [float(v) for v in light.direction / np.linalg.norm(light.direction)]
            cosang = -(vx * dvec[0] + vy * dvec[1] + vz * dvec[2]) * inv
            e *= np.clip((cosang - light.cone) / (1.0 - light.cone), 0.0, 1.0) ** 1.5
        total = cv2.add(total, cv2.multiply(_planes(e), _scalar(light.color)))
    total[ids == 0] = 0.0
    total *= rng.uniform(0.8, 1.2)
    return cv2.resize(total, (w, h), interpolation=cv2.INTER_LINEAR)


_RENDERERS = {"clear": _clear, "snow": _snow, "rain": _rain, "fog": _fog, "night": _night}
