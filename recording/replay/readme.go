package replay

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// beijing is how people in the bureau read times; the archive and the
// manifest keep UTC.
var beijing = time.FixedZone("北京时间", 8*3600)

func bjt(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(beijing).Format("2006-01-02 15:04:05")
}

var roleZH = map[string]string{"supervisor": "督查人员", "county": "县级单位", "observer": "观察员"}

var resultZH = map[evidence.Result]string{
	evidence.Intact:        "完好（签名有效，哈希链完整，所有片段哈希一致）",
	evidence.Altered:       "已被篡改或缺失",
	evidence.CouldNotCheck: "无法检查",
}

// readmeZH explains, in Chinese, how to check the package with standard
// tools only; it names the package's own files so commands can be pasted.
func readmeZH(x *Export, segs []segmentFile) string {
	m, e := x.manifest, x.entry
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("督查录像证据包")
	line("==============")
	line("")
	line("督查事项：%s", e.Title)
	if e.CaseNumber != "" {
		line("信访件编号：%s", e.CaseNumber)
	}
	line("录像编号：%s", x.id)
	if e.SupervisorName != "" {
		line("督查人员：%s", e.SupervisorName)
	}
	line("会话时间：%s 至 %s（北京时间）", bjt(e.Start), bjt(e.End))
	line("录像时段：%s 至 %s（北京时间）", bjt(e.RecordedStart), bjt(e.RecordedEnd))
	line("签名节点：%s，清单生成于 %s", m.NodeID, bjt(m.Created))
	line("导出时间：%s", bjt(x.prepared))
	line("导出时服务器校验结论：%s", resultZH[x.report.Result])
	if x.report.FirstBad != nil {
		p := x.report.FirstBad
		line("  第一个问题：%s %s", p.Key, p.Detail)
	}
	line("")
	line("本证据包不依赖 ducha 软件即可独立核验，只需常用工具：sha256sum（Linux 自带）、")
	line("openssl 1.1.1 或更新版本、ffprobe（FFmpeg 的一部分）。以下命令均在解压后的目录")
	line("%s/ 中执行。", x.dir)
	line("")
	line("一、文件说明")
	line("  %-22s 录像清单：会话信息、参会人员、每个录像片段的 SHA-256 与起止时间、", ExportManifest)
	line("  %-22s 哈希链、会话事件记录（入会、离会、静音、移出、聊天、锁定、录制开关）", "")
	if x.sig != nil {
		line("  %-22s 签名节点对 manifest.json 的 Ed25519 签名（64 字节原始签名）", ExportSignature)
	} else {
		line("  %-22s 缺失！归档中找不到清单签名，清单的真实性无法证明", ExportSignature)
	}
	line("  %-22s 签名节点的公钥；请与本单位公布的公钥核对，勿仅凭本包中的公钥下结论", ExportPublicKey)
	line("  %-22s 导出时服务器的校验报告（JSON）", ExportReportJSON)
	line("  %-22s 导出时服务器的校验报告（中文）", ExportReportText)
	line("  %-22s 本包内各文件的 SHA-256；录像片段的哈希直接取自已签名的 manifest.json", ExportSums)
	line("  %-22s 录像片段（WebM 格式，未经转码），按“参会人/来源/序号-开始时间”存放", ExportSegmentsDir)
	line("")
	line("二、参会人员与目录对照")
	names := map[string]evidence.Participant{}
	for _, p := range m.Participants {
		names[p.ID] = p
	}
	seen := map[string]bool{}
	var dirs []string
	for _, f := range segs {
		i := strings.Index(strings.TrimPrefix(f.path, ExportSegmentsDir), "/")
		if !strings.HasPrefix(f.path, ExportSegmentsDir) || i < 0 {
			continue
		}
		d := f.path[:len(ExportSegmentsDir)+i+1]
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		part := strings.TrimSuffix(strings.TrimPrefix(d, ExportSegmentsDir), "/")
		id, err := archive.UnescapePart(part)
		if err != nil {
			id = part
		}
		p := names[id]
		name := p.Name
		if name == "" {
			name = id
		}
		role := roleZH[p.Role]
		if role == "" {
			role = p.Role
		}
		org := p.Organization
		if org == "" {
			org = "—"
		}
		line("  %s", d)
		line("      姓名/名称：%s；角色：%s；单位代码：%s；入会：%s；离会：%s", name, role, org, bjt(p.Joined), bjt(p.Left))
	}
	if len(dirs) == 0 {
		line("  （本录像没有已归档的片段）")
	}
	line("  “camera” 目录是摄像头与麦克风（同一文件内音画同步），“screen” 是屏幕共享。")
	line("  片段文件名中的时间是该片段开始的 UTC 时间；所有参会人的片段使用同一服务器时钟，")
	line("  可据此对齐同一时刻各方的画面。")
	line("")
	line("三、核验步骤")
	line("1. 核对文件完整性，并核对录像片段与签名清单一致：")
	line("       sha256sum -c %s", ExportSums)
	line("   每行应显示“成功”（英文环境显示 OK）。由于片段的哈希取自已签名的清单，这一步同时")
	line("   证明每个片段与清单记载的一致。任何一行“失败”或“没有那个文件”都说明该文件被改动或缺失。")
	line("   Windows 可用：certutil -hashfile 文件名 SHA256，逐个与 %s 对照。", ExportSums)
	line("")
	line("2. 核对清单签名（证明清单出自签名节点且未被改动）：")
	line("       openssl pkeyutl -verify -pubin -inkey %s -rawin -in %s -sigfile %s", ExportPublicKey, ExportManifest, ExportSignature)
	line("   应输出 “Signature Verified Successfully”。")
	line("   核对公钥指纹，应与清单中 \"signer\" 字段一致（%s）：", m.Signer)
	line("       openssl pkey -pubin -in %s -outform DER | tail -c 32 | sha256sum", ExportPublicKey)
	line("")
	line("3. 核对 %s 中的片段哈希确实来自清单：清单 \"segments\" 中每一项的 \"sha256\" 应与", ExportSums)
	line("   %s 中同名文件的哈希相同，例如：", ExportSums)
	if len(segs) > 0 {
		line("       grep -c %s %s        # 应输出 1", segs[0].seg.SHA256, ExportManifest)
	} else {
		line("       grep -c <哈希> %s        # 应输出 1", ExportManifest)
	}
	lost := 0
	for _, s := range m.Segments {
		if s.State == evidence.StateLost {
			lost++
		}
	}
	if lost > 0 {
		line("   注意：清单中有 %d 个片段的 \"state\" 为 \"lost\"，它们在上传归档前已在本地损坏，", lost)
		line("   清单如实声明了这一情况（见 \"lost_reason\"），本包不含这些片段。")
	}
	if len(m.Gaps) > 0 {
		line("   清单的 \"gaps\" 声明了 %d 段未能录制的时间（例如服务器故障），见 verification.txt。", len(m.Gaps))
	}
	if slices.ContainsFunc(m.Segments, func(s evidence.SegmentEntry) bool {
		return s.AudioFramesFilled != nil && *s.AudioFramesFilled > 0
	}) {
		line("   片段的 \"audio_frames_filled\" 是录制端在静音或丢包处填充的音频帧数（并非麦克风发出的声音，")
		line("   播放时为渐弱的静音），\"audio_frames\" 是收到的音频帧数；按参会人的汇总见 verification.txt。")
	}
	line("")
	line("4. 检查录像可以播放（任何支持 WebM 的播放器均可，如浏览器、VLC）：")
	if len(segs) > 0 {
		line("       ffprobe -v error -show_entries format=duration:stream=codec_name,width,height -of json %s", segs[0].path)
	} else {
		line("       ffprobe -v error -show_entries format=duration:stream=codec_name,width,height -of json 片段文件")
	}
	line("")
	line("5. 哈希链（深入核验，可选）：清单中的每条片段或缺口记录都包含前一条记录的哈希（\"prev\"），")
	line("   构成一条链；\"chain.head\" 是最后一条记录的哈希，\"chain.length\" 是记录条数，删去或插入")
	line("   任何记录都会使链断开。记录哈希是对固定字段顺序、无空白的 JSON 计算的 SHA-256，格式")
	line("   说明见 ducha 源代码 recording/evidence/FORMAT.md。")
	line("")
	line("说明：verification.txt 是导出时服务器的校验结果，仅供参考；以上步骤不依赖服务器，")
	line("也不依赖 ducha 软件。")
	switch {
	case x.lockErr != nil:
		line("归档保护：导出时未能读取清单的对象锁状态（%v）。", x.lockErr)
	case x.lock.Retention.Mode != archive.NoRetention:
		line("归档保护：清单及片段以对象锁（WORM，%s 模式）保存，清单保存至 %s，保存期内不能被删除或覆盖。",
			x.lock.Retention.Mode, bjt(x.lock.Retention.Until))
	default:
		line("归档保护：该归档未对清单设置对象锁（保存期限），其完整性只能依靠签名和哈希链证明。")
	}
	if x.lock.LegalHold {
		line("清单处于法律保全（legal hold）状态，解除前不能删除。")
	}
	return b.String()
}
