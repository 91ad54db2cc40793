package evidence

import (
	"fmt"
	"strings"
	"time"
)

// Languages of the text report.
const (
	LangZH = "zh"
	LangEN = "en"
)

type reportStrings struct {
	result       map[Result]string
	problem      map[ProblemCode]string
	session      string
	reason       string
	manifest     string
	node         string
	signer       string
	checkedWith  string
	segments     string
	firstBad     string
	others       string
	gaps         string
	lost         string
	unlisted     string
	audio        string
	audioTrack   string
	uncounted    string
	record       string
	manifestItem string
}

func stringsFor(lang string) reportStrings {
	if lang == LangEN {
		return reportStrings{
			result: map[Result]string{Intact: "INTACT", Altered: "ALTERED OR MISSING", CouldNotCheck: "COULD NOT CHECK"},
			problem: map[ProblemCode]string{
				ProblemSignatureMissing: "signature missing", ProblemBadSignature: "signature invalid",
				ProblemManifestInvalid: "manifest malformed", ProblemSessionMismatch: "manifest of another session",
				ProblemChainIndex: "chain record missing or repeated", ProblemRecordHash: "record altered (hash differs)",
				ProblemChainLink: "chain broken (previous hash differs)", ProblemChainHead: "chain end differs from manifest",
				ProblemKeyMismatch: "object key does not match record", ProblemMissing: "object missing",
				ProblemContent: "content altered (SHA-256 differs)", ProblemSize: "size differs",
			},
			session: "Session", reason: "Reason", manifest: "Manifest", node: "node", signer: "Signed by",
			checkedWith: "checked with key", segments: "Segments: %d listed, %d verified (%d bytes), %d records in chain",
			firstBad: "First bad link", others: "Other problems", gaps: "Declared gaps", lost: "Segments lost before archiving (declared)",
			unlisted: "Objects not named by the manifest (not counted)", record: "record #%d", manifestItem: "manifest",
			audio:      "Audio concealment (frames the recorder filled into silence or loss, not sent by the microphone)",
			audioTrack: "%d of %d frames filled (%.1f%%)", uncounted: "; %d segment(s) without counts (recovered after a crash, or cut short by a write error)",
		}
	}
	return reportStrings{
		result: map[Result]string{Intact: "完好", Altered: "已被篡改或缺失", CouldNotCheck: "无法检查"},
		problem: map[ProblemCode]string{
			ProblemSignatureMissing: "签名缺失", ProblemBadSignature: "签名无效",
			ProblemManifestInvalid: "清单格式错误", ProblemSessionMismatch: "清单属于其他会话",
			ProblemChainIndex: "链记录缺失或重复", ProblemRecordHash: "记录被改动（哈希不符）",
			ProblemChainLink: "哈希链断裂（前一记录哈希不符）", ProblemChainHead: "链尾与清单不符",
			ProblemKeyMismatch: "对象键与记录不符", ProblemMissing: "对象缺失",
			ProblemContent: "内容被改动（SHA-256 不符）", ProblemSize: "大小不符",
		},
		session: "会话", reason: "原因", manifest: "清单", node: "节点", signer: "签名密钥",
		checkedWith: "校验所用密钥", segments: "片段：清单列出 %d 个，校验通过 %d 个（%d 字节），哈希链共 %d 条记录",
		firstBad: "第一个问题", others: "其他问题", gaps: "已声明的缺口", lost: "归档前丢失的片段（已声明）",
		unlisted: "清单未列出的对象（不计入结论）", record: "第 %d 条记录", manifestItem: "清单",
		audio:      "音频补帧（静音或丢包处由录制端填充，并非麦克风发出的声音）",
		audioTrack: "共 %[2]d 帧，其中补帧 %[1]d 帧（%.1[3]f%%）", uncounted: "；%d 个片段无计数（崩溃后恢复或写入出错）",
	}
}

// Text renders the report for a person; lang is LangZH (default) or LangEN.
func (r Report) Text(lang string) string {
	s := stringsFor(lang)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s (%s)\n", s.session, r.Session, s.result[r.Result], r.Result)
	if r.Reason != "" {
		fmt.Fprintf(&b, "%s: %s\n", s.reason, r.Reason)
	}
	if (r.ManifestKey != "" && r.Result != CouldNotCheck) || r.NodeID != "" {
		fmt.Fprintf(&b, "%s: %s", s.manifest, r.ManifestKey)
		if r.ManifestVersion != "" {
			fmt.Fprintf(&b, " @%s", r.ManifestVersion)
		}
		if r.NodeID != "" {
			fmt.Fprintf(&b, ", %s %s, %s", s.node, r.NodeID, r.Created.UTC().Format(time.RFC3339))
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "%s: %s; %s: %s\n", s.signer, r.Signer, s.checkedWith, r.Key)
		fmt.Fprintf(&b, s.segments+"\n", r.Segments, r.SegmentsOK, r.Bytes, r.Records)
	}
	line := func(p Problem) string {
		where := s.manifestItem
		if p.Index >= 0 {
			where = fmt.Sprintf(s.record, p.Index)
		}
		out := fmt.Sprintf("%s [%s]", s.problem[p.Code], where)
		if p.Key != "" {
			out += " " + p.Key
			if p.VersionID != "" {
				out += " @" + p.VersionID
			}
		}
		return out + ": " + p.Detail
	}
	if r.FirstBad != nil {
		fmt.Fprintf(&b, "%s: %s\n", s.firstBad, line(*r.FirstBad))
		if len(r.Problems) > 1 {
			fmt.Fprintf(&b, "%s:\n", s.others)
			for _, p := range r.Problems[1:] {
				fmt.Fprintf(&b, "  - %s\n", line(p))
			}
		}
	}
	if len(r.Gaps) > 0 {
		fmt.Fprintf(&b, "%s:\n", s.gaps)
		for _, g := range r.Gaps {
			fmt.Fprintf(&b, "  - %s/%s %s – %s: %s\n", g.Participant, g.Source,
				g.Start.UTC().Format(time.RFC3339Nano), g.End.UTC().Format(time.RFC3339Nano), g.Reason)
		}
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "%s:\n", s.lost)
		for _, l := range r.Lost {
			fmt.Fprintf(&b, "  - %s/%s #%d %s – %s: %s\n", l.Participant, l.Source, l.Seq,
				l.Start.UTC().Format(time.RFC3339Nano), l.End.UTC().Format(time.RFC3339Nano), l.LostReason)
		}
	}
	if len(r.Audio) > 0 {
		fmt.Fprintf(&b, "%s:\n", s.audio)
		for _, a := range r.Audio {
			total := a.Frames + a.Filled
			counts := fmt.Sprintf(s.audioTrack, a.Filled, total, 100*float64(a.Filled)/float64(total))
			fmt.Fprintf(&b, "  - %s/%s: %s", a.Participant, a.Source, counts)
			if a.Uncounted > 0 {
				fmt.Fprintf(&b, s.uncounted, a.Uncounted)
			}
			b.WriteString("\n")
		}
	}
	if len(r.Unlisted) > 0 {
		fmt.Fprintf(&b, "%s:\n", s.unlisted)
		for _, k := range r.Unlisted {
			fmt.Fprintf(&b, "  - %s\n", k)
		}
	}
	return b.String()
}
