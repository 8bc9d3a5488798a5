package exlive

import (
	"fmt"
	"strings"
)

// Encoding is the text encoding of the platform's frames.
type Encoding uint8

// The encodings a platform may speak.
const (
	// EncodingAuto keeps a frame that is valid UTF-8 and reads any other
	// frame as GB18030, the superset of GBK.
	EncodingAuto Encoding = iota
	// EncodingUTF8 reads every frame as UTF-8; invalid bytes become U+FFFD.
	EncodingUTF8
	// EncodingGBK reads and writes every frame as GB18030.
	EncodingGBK
)

// ParseEncoding reads an encoding name: auto, utf-8 (utf8) or gbk (gb18030).
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return EncodingAuto, nil
	case "utf-8", "utf8":
		return EncodingUTF8, nil
	case "gbk", "gb18030", "gb2312":
		return EncodingGBK, nil
	}
	return 0, fmt.Errorf("exlive: unknown encoding %q (want auto, utf-8 or gbk)", s)
}

// String returns the encoding's name.
func (e Encoding) String() string {
	switch e {
	case EncodingUTF8:
		return "utf-8"
	case EncodingGBK:
		return "gbk"
	}
	return "auto"
}

// UnmarshalText lets settings name an encoding.
func (e *Encoding) UnmarshalText(b []byte) error {
	v, err := ParseEncoding(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// MarshalText returns the encoding's name.
func (e Encoding) MarshalText() ([]byte, error) { return []byte(e.String()), nil }
