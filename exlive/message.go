package exlive

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
)

// Cmd is a protocol command number, the header's "cmd".
type Cmd uint16

// The commands of the protocol.
const (
	CmdLogin            Cmd = 1000 // client→server: log in
	CmdLogout           Cmd = 1001 // client→server: log out
	CmdHeartbeat        Cmd = 1002 // client→server: keep the session alive
	CmdText             Cmd = 1003 // both ways: a text message
	CmdVehicleCommand   Cmd = 1004 // client→server: a command for a vehicle terminal
	CmdGroupData        Cmd = 1005 // client→server: the user's customer and group data
	CmdVehicleData      Cmd = 1006 // client→server: vehicle data from the user
	CmdPosition         Cmd = 1007 // both ways: a vehicle position
	CmdGroupsRequest    Cmd = 1008 // client→server: ask for the account's groups
	CmdGroup            Cmd = 1009 // server→client: one group
	CmdVehiclesRequest  Cmd = 1010 // client→server: ask for the vehicles of a group
	CmdVehicle          Cmd = 1011 // server→client: one vehicle of a group
	CmdPassthrough      Cmd = 1012 // client→server: bytes for a device
	CmdPassthroughReply Cmd = 1013 // server→client: bytes from a device
	CmdAnswer           Cmd = 8000 // server→client: the answer to a command
)

// String returns the command as the protocol spells it, "1007".
func (c Cmd) String() string { return strconv.Itoa(int(c)) }

// parseCmd reads a command number from its text. ok is false for anything
// that is not a number the protocol could use.
func parseCmd(v value) (Cmd, bool) {
	if v.kind != kindString && v.kind != kindNumber {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v.bytes()), 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return Cmd(n), true
}

// Message is one protocol message. Every type in this package that
// implements it encodes and decodes both ways, so the simulated platform
// speaks with the same codec as the client.
type Message interface {
	// Cmd returns the header command.
	Cmd() Cmd
	// appendBody appends the body object as the platform writes it: every
	// value a string.
	appendBody(dst []byte) []byte
	// decodeBody reads one body member.
	decodeBody(key []byte, v value, d *Decoder)
}

// Login is command 1000, the first frame of every session.
type Login struct {
	Name string
	Pass secret.String
	Ver  string
	Type string
	Mode string
}

// Answer is command 8000, the platform's answer to a command: Command names
// the command answered and Result is "succeed" (or "success") or what went
// wrong.
type Answer struct {
	Command Cmd
	Result  string
}

// OK reports whether the platform accepted the command: its result is
// ResultSucceed or ResultSuccess, in any case and with any spaces around.
func (a *Answer) OK() bool { return IsSuccess(a.Result) }

// The results of an Answer that accepts a command. The specification writes
// "success"; live servers answer a login "succeed" (docs/protocol.md has the
// evidence), and no one knows which word the other answers use, so both
// mean success everywhere.
const (
	ResultSucceed = "succeed"
	ResultSuccess = "success"
)

// IsSuccess reports whether an 8000 result accepts its command.
func IsSuccess(result string) bool {
	r := strings.TrimSpace(result)
	return strings.EqualFold(r, ResultSucceed) || strings.EqualFold(r, ResultSuccess)
}

// Logout is command 1001, sent before the client closes the connection.
type Logout struct{ Data string }

// Heartbeat is command 1002, sent every Config.Heartbeat.
type Heartbeat struct{ Result string }

// TextMessage is command 1003, a text message in either direction.
type TextMessage struct{ Msg string }

// VehicleCommand is command 1004: Data for the terminal of vehicle ID.
type VehicleCommand struct{ ID, Data string }

// GroupData is command 1005: the user's customer and group data.
type GroupData struct{ Data string }

// VehicleData is command 1006: vehicle data sent by the user.
type VehicleData struct{ Data string }

// GroupsRequest is command 1008: ask for the account's groups, with the
// customer relations when Client is set.
type GroupsRequest struct{ Client bool }

// Group is command 1009, one group of the account.
type Group struct {
	ID       string
	Relation string
	Customer string
	Name     string
}

// VehiclesRequest is command 1010: ask for the vehicles of one group.
type VehiclesRequest struct{ GroupID string }

// Vehicle is command 1011, one vehicle of a group. The frame does not say
// which group: the session fills GroupID from the request it answers.
type Vehicle struct {
	ID      string
	Code    string
	SIM     string
	GroupID string
}

// Passthrough is command 1012: Data for a device, passed through unchanged.
type Passthrough struct{ TerminalID, Code, Data string }

// PassthroughReply is command 1013: Data from a device, passed through.
type PassthroughReply struct{ TerminalID, Code, Data string }

// Unknown is a frame whose command this package does not know. The session
// hands it over rather than failing, so new commands of a live platform can
// be learned from the logs.
type Unknown struct {
	Command Cmd
	Body    []byte // the body object verbatim
}

// Cmd returns CmdLogin.
func (*Login) Cmd() Cmd { return CmdLogin }

// Cmd returns CmdLogout.
func (*Logout) Cmd() Cmd { return CmdLogout }

// Cmd returns CmdHeartbeat.
func (*Heartbeat) Cmd() Cmd { return CmdHeartbeat }

// Cmd returns CmdText.
func (*TextMessage) Cmd() Cmd { return CmdText }

// Cmd returns CmdVehicleCommand.
func (*VehicleCommand) Cmd() Cmd { return CmdVehicleCommand }

// Cmd returns CmdGroupData.
func (*GroupData) Cmd() Cmd { return CmdGroupData }

// Cmd returns CmdVehicleData.
func (*VehicleData) Cmd() Cmd { return CmdVehicleData }

// Cmd returns CmdGroupsRequest.
func (*GroupsRequest) Cmd() Cmd { return CmdGroupsRequest }

// Cmd returns CmdGroup.
func (*Group) Cmd() Cmd { return CmdGroup }

// Cmd returns CmdVehiclesRequest.
func (*VehiclesRequest) Cmd() Cmd { return CmdVehiclesRequest }

// Cmd returns CmdVehicle.
func (*Vehicle) Cmd() Cmd { return CmdVehicle }

// Cmd returns CmdPassthrough.
func (*Passthrough) Cmd() Cmd { return CmdPassthrough }

// Cmd returns CmdPassthroughReply.
func (*PassthroughReply) Cmd() Cmd { return CmdPassthroughReply }

// Cmd returns CmdAnswer.
func (*Answer) Cmd() Cmd { return CmdAnswer }

// Cmd returns the frame's command.
func (u *Unknown) Cmd() Cmd { return u.Command }

// field appends one "key":"value" member, with a comma when it is not the
// first.
func field(dst []byte, key, val string) []byte {
	return jsonw.String(jsonw.Member(dst, key), val)
}

func (m *Login) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "name", m.Name)
	dst = field(dst, "pass", m.Pass.Reveal())
	dst = field(dst, "ver", m.Ver)
	dst = field(dst, "type", m.Type)
	dst = field(dst, "mode", m.Mode)
	return append(dst, '}')
}

func (m *Login) decodeBody(key []byte, v value, _ *Decoder) {
	switch string(key) {
	case "name":
		m.Name = v.text()
	case "pass":
		m.Pass = secret.String(v.text())
	case "ver":
		m.Ver = v.text()
	case "type":
		m.Type = v.text()
	case "mode":
		m.Mode = v.text()
	}
}

func (m *Answer) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "cmd", m.Command.String())
	dst = field(dst, "result", m.Result)
	return append(dst, '}')
}

func (m *Answer) decodeBody(key []byte, v value, _ *Decoder) {
	switch string(key) {
	case "cmd":
		m.Command, _ = parseCmd(v)
	case "result":
		m.Result, _ = cut(v.text(), MaxTextLen)
	}
}

func (m *Logout) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "data", m.Data), '}')
}

func (m *Logout) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "data" {
		m.Data = v.text()
	}
}

func (m *Heartbeat) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "result", m.Result), '}')
}

func (m *Heartbeat) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "result" {
		m.Result = v.text()
	}
}

func (m *TextMessage) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "msg", m.Msg), '}')
}

func (m *TextMessage) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "msg" {
		m.Msg = v.text()
	}
}

func (m *VehicleCommand) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "id", m.ID)
	dst = field(dst, "data", m.Data)
	return append(dst, '}')
}

func (m *VehicleCommand) decodeBody(key []byte, v value, _ *Decoder) {
	switch string(key) {
	case "id":
		m.ID = v.text()
	case "data":
		m.Data = v.text()
	}
}

func (m *GroupData) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "data", m.Data), '}')
}

func (m *GroupData) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "data" {
		m.Data = v.text()
	}
}

func (m *VehicleData) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "data", m.Data), '}')
}

func (m *VehicleData) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "data" {
		m.Data = v.text()
	}
}

func (m *GroupsRequest) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "client", strconv.FormatBool(m.Client)), '}')
}

func (m *GroupsRequest) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "client" {
		m.Client, _ = parseBool(v)
	}
}

func (m *Group) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "groupid", m.ID)
	dst = field(dst, "relation", m.Relation)
	dst = field(dst, "customer", m.Customer)
	dst = field(dst, "goupname", m.Name) // sic: the specification's spelling
	return append(dst, '}')
}

func (m *Group) decodeBody(key []byte, v value, _ *Decoder) {
	switch string(key) {
	case "groupid":
		m.ID = v.text()
	case "relation":
		m.Relation, _ = cut(v.text(), MaxTextLen)
	case "customer":
		m.Customer, _ = cut(v.text(), MaxTextLen)
	case "goupname", "groupname":
		if s := v.text(); s != "" || m.Name == "" {
			m.Name, _ = cut(s, MaxTextLen)
		}
	}
}

// check refuses a group whose id is too long to keep.
func (m *Group) check() error { return checkID(CmdGroup, "groupid", m.ID) }

func (m *VehiclesRequest) appendBody(dst []byte) []byte {
	return append(field(append(dst, '{'), "groupid", m.GroupID), '}')
}

func (m *VehiclesRequest) decodeBody(key []byte, v value, _ *Decoder) {
	if string(key) == "groupid" {
		m.GroupID = v.text()
	}
}

func (m *Vehicle) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "id", m.ID)
	dst = field(dst, "code", m.Code)
	dst = field(dst, "sim", m.SIM)
	return append(dst, '}')
}

func (m *Vehicle) decodeBody(key []byte, v value, _ *Decoder) {
	switch string(key) {
	case "id":
		m.ID = v.text()
	case "code":
		if m.Code = v.text(); len(m.Code) > MaxCodeLen {
			m.Code = ""
		}
	case "sim":
		if m.SIM = v.text(); len(m.SIM) > MaxIDLen {
			m.SIM = ""
		}
	}
}

// check refuses a vehicle whose id is too long to keep.
func (m *Vehicle) check() error { return checkID(CmdVehicle, "id", m.ID) }

// checkID refuses an id longer than MaxIDLen.
func checkID(cmd Cmd, key, id string) error {
	if len(id) <= MaxIDLen {
		return nil
	}
	return &FrameError{Reason: ReasonBadField, Cmd: cmd,
		Detail: key + " of " + itoa(len(id)) + " bytes, longer than " + itoa(MaxIDLen) + ": " + quoteShort([]byte(id))}
}

func (m *Passthrough) appendBody(dst []byte) []byte {
	return appendPassthrough(dst, m.TerminalID, m.Code, m.Data)
}

func (m *Passthrough) decodeBody(key []byte, v value, _ *Decoder) {
	decodePassthrough(key, v, &m.TerminalID, &m.Code, &m.Data)
}

func (m *PassthroughReply) appendBody(dst []byte) []byte {
	return appendPassthrough(dst, m.TerminalID, m.Code, m.Data)
}

func (m *PassthroughReply) decodeBody(key []byte, v value, _ *Decoder) {
	decodePassthrough(key, v, &m.TerminalID, &m.Code, &m.Data)
}

func appendPassthrough(dst []byte, terminalID, code, data string) []byte {
	dst = append(dst, '{')
	dst = field(dst, "terminalid", terminalID)
	dst = field(dst, "code", code)
	dst = field(dst, "data", data)
	return append(dst, '}')
}

func decodePassthrough(key []byte, v value, terminalID, code, data *string) {
	switch string(key) {
	case "terminalid":
		*terminalID = v.text()
	case "code":
		*code = v.text()
	case "data":
		*data = v.text()
	}
}

func (m *Unknown) appendBody(dst []byte) []byte {
	if len(m.Body) == 0 {
		return append(dst, '{', '}')
	}
	return append(dst, m.Body...)
}

func (m *Unknown) decodeBody([]byte, value, *Decoder) {}

// AppendFrame appends m as one compact frame, without the line end:
// {"header":{"cmd":"NNNN"},"body":{…}}.
func AppendFrame(dst []byte, m Message) []byte {
	dst = append(dst, `{"header":{"cmd":"`...)
	dst = strconv.AppendUint(dst, uint64(m.Cmd()), 10)
	dst = append(dst, `"},"body":`...)
	dst = m.appendBody(dst)
	return append(dst, '}')
}

// parseBool reads the protocol's flags: "1"/"0", "true"/"false", 1/0, true/false.
func parseBool(v value) (b, ok bool) {
	switch v.kind {
	case kindTrue:
		return true, true
	case kindFalse:
		return false, true
	case kindString, kindNumber:
		switch string(v.raw) {
		case "1", "true", "TRUE", "True":
			return true, true
		case "0", "false", "FALSE", "False":
			return false, true
		}
	}
	return false, false
}

// newMessage returns a zero message of the given command, or nil for a
// command this package does not know.
func newMessage(c Cmd) Message {
	switch c {
	case CmdLogin:
		return new(Login)
	case CmdLogout:
		return new(Logout)
	case CmdHeartbeat:
		return new(Heartbeat)
	case CmdText:
		return new(TextMessage)
	case CmdVehicleCommand:
		return new(VehicleCommand)
	case CmdGroupData:
		return new(GroupData)
	case CmdVehicleData:
		return new(VehicleData)
	case CmdGroupsRequest:
		return new(GroupsRequest)
	case CmdGroup:
		return new(Group)
	case CmdVehiclesRequest:
		return new(VehiclesRequest)
	case CmdVehicle:
		return new(Vehicle)
	case CmdPassthrough:
		return new(Passthrough)
	case CmdPassthroughReply:
		return new(PassthroughReply)
	case CmdAnswer:
		return new(Answer)
	}
	return nil
}

// String makes a Login printable without its password.
func (m *Login) String() string {
	return fmt.Sprintf("login name=%q pass=%s ver=%q type=%q mode=%q", m.Name, m.Pass, m.Ver, m.Type, m.Mode)
}
