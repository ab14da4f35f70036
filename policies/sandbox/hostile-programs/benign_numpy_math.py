# ruff: noqa
# attempt: benign: numpy and math helpers
# expect: ok
pts = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
centroid = pts.mean(axis=0)
dist = np.linalg.norm(pts - centroid, axis=1)
angle = math.degrees(math.atan2(1.0, 1.0))
print(centroid.tolist(), round(float(dist.max()), 3), angle)
