package imaging

// Made is the number of loads c made (each shared by the sources that
// asked for the same one).
func (c *CacheLoads) Made() int64 { return c.loads.Load() }
