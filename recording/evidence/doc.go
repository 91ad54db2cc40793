// Package evidence makes recordings trustworthy: a crash-safe spool of closed
// segments, a per-session SHA-256 hash chain (segments and declared gaps), an
// uploader that moves the spool into the archive with backoff, the session
// manifest signed with the node's Ed25519 key, and Verify / `ducha verify`,
// which recompute everything from the archive.
//
// Wiring (one of each per node):
//
//	key, _ := evidence.LoadOrCreateNodeKey(dataDir)
//	spool, _ := evidence.OpenSpool(filepath.Join(dataDir, "spool"), log)
//	up, _ := evidence.NewUploader(spool, arch, evidence.UploaderConfig{Retention: policy, Signer: key, NodeID: id, Logger: log})
//	go up.Run(ctx)
//	// recorder: spool.AddSegment(ctx, evidence.Segment{...}) for each closed file,
//	//           spool.AddGap(ctx, evidence.Gap{...}) for what it knows is lost;
//	// session end: spool.CloseSession(ctx, evidence.ManifestInput{...}) after the last segment;
//	// API: up.Status(), spool.SessionBacklog(id).
//
// The formats an outsider needs to check an export without ducha are in FORMAT.md.
package evidence
