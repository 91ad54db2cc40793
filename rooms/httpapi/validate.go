package httpapi

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ducha-dev/ducha/rooms"
)

// MaxSessionLength caps scheduled sessions: a longer one is almost always
// a mistyped date.
const MaxSessionLength = 24 * time.Hour

// sessionFields is the editable part of a session, parsed and merged before
// validation so that a PATCH is checked as the whole it produces.
type sessionFields struct {
	title, caseNumber string
	start, end        time.Time
	units             []rooms.Unit
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errValidation(field,
			"时间格式应为 RFC 3339，例如 2026-03-02T09:00:00+08:00",
			"time must be RFC 3339, e.g. 2026-03-02T09:00:00+08:00")
	}
	return t, nil
}

// checkText refuses control characters, which have no place in titles or
// names and would garble logs and join tokens.
func checkText(field, v string, minLen, maxLen int, zhName string) error {
	n := utf8.RuneCountInString(v)
	if n < minLen || n > maxLen {
		if minLen > 0 {
			return errValidation(field, fmt.Sprintf("%s应为 %d 到 %d 个字符", zhName, minLen, maxLen),
				fmt.Sprintf("%s must have %d to %d characters", field, minLen, maxLen))
		}
		return errValidation(field, fmt.Sprintf("%s最多 %d 个字符", zhName, maxLen),
			fmt.Sprintf("%s must have at most %d characters", field, maxLen))
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return errValidation(field, zhName+"包含无效字符", field+" contains invalid characters")
	}
	return nil
}

// validUnitCode keeps unit codes to what is safe in join tokens, URLs and
// store keys; county codes are digits in practice.
func validUnitCode(c string) bool {
	if c == "" || len(c) > rooms.MaxUnitCodeLen {
		return false
	}
	for i := 0; i < len(c); i++ {
		switch b := c[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_', b == '.':
		default:
			return false
		}
	}
	return true
}

func (f sessionFields) validate() error {
	if err := checkText("title", f.title, 1, rooms.MaxTitleLen, "标题"); err != nil {
		return err
	}
	if err := checkText("caseNumber", f.caseNumber, 0, rooms.MaxCaseNumberLen, "信访件编号"); err != nil {
		return err
	}
	switch {
	case f.start.IsZero():
		return errValidation("scheduledStart", "请填写开始时间", "scheduledStart is required")
	case f.end.IsZero():
		return errValidation("scheduledEnd", "请填写结束时间", "scheduledEnd is required")
	case !f.end.After(f.start):
		return errValidation("scheduledEnd", "结束时间必须晚于开始时间", "scheduledEnd must be after scheduledStart")
	case f.end.Sub(f.start) > MaxSessionLength:
		return errValidation("scheduledEnd", "会话时长不能超过 24 小时", "a session cannot last more than 24 hours")
	case len(f.units) > rooms.MaxInvitedUnits:
		return errValidation("invitedUnits", fmt.Sprintf("最多邀请 %d 个单位", rooms.MaxInvitedUnits),
			fmt.Sprintf("at most %d invited units", rooms.MaxInvitedUnits))
	}
	seen := make(map[string]bool, len(f.units))
	for i, u := range f.units {
		field := fmt.Sprintf("invitedUnits[%d]", i)
		if !validUnitCode(u.Code) {
			return errValidation(field+".code", "单位代码应为 1 到 64 个字母、数字或 . - _",
				"unit code must be 1 to 64 of A-Z a-z 0-9 . - _")
		}
		if err := checkText(field+".name", u.Name, 1, rooms.MaxUnitNameLen, "单位名称"); err != nil {
			return err
		}
		if seen[u.Code] {
			return errValidation(field+".code", "单位 "+u.Code+" 重复", "unit "+u.Code+" is listed twice")
		}
		seen[u.Code] = true
	}
	return nil
}

// trimUnits returns units with surrounding spaces removed, as typed names
// often have them.
func trimUnits(units []rooms.Unit) []rooms.Unit {
	out := make([]rooms.Unit, len(units))
	for i, u := range units {
		out[i] = rooms.Unit{Code: strings.TrimSpace(u.Code), Name: strings.TrimSpace(u.Name)}
	}
	return out
}
