"""Other proxies' URLs (thumbor, imgproxy) mapped to edgeproxy's TransformSpec (docs/migration/)."""
