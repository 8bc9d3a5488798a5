package events

import "testing"

func TestParseACC(t *testing.T) {
	for _, tc := range []struct {
		cstate string
		want   ACC
	}{
		{"ACC开", ACCOn},
		{"ACC关", ACCOff},
		{"ACC ON", ACCOn},
		{"ACC OFF", ACCOff},
		{"acc on", ACCOn},
		{"Acc Off", ACCOff},
		{"ACCON", ACCOn},
		{"ACCOFF", ACCOff},
		{"ACC:ON", ACCOn},
		{"ACC：关", ACCOff}, // a full-width colon
		{"ACC = off", ACCOff},
		{"ACC_ON", ACCOn},
		{"ACC-OFF", ACCOff},
		{"ACC开,定位", ACCOn},
		{"ACC关,未定位", ACCOff},
		{"定位,ACC开", ACCOn},
		{"ACC ON;GPS", ACCOn},
		{"GPS;ACC OFF;", ACCOff},
		{"ACC OFF,ALARM ON", ACCOff}, // ON of another state is not ACC's
		{"ACC开启", ACCOn},
		{"ACC关闭", ACCOff},
		{"油路正常,ACC关,设防", ACCOff},
		{"ACC ONLINE", ACCUnknown}, // not an ignition state
		{"ACC OFFSET", ACCUnknown},
		{"VACC ON", ACCUnknown}, // another word
		{"ACC1 ON", ACCUnknown}, // not followed by a state
		{"ACC 1,ACC ON", ACCOn}, // the first ACC says nothing: a later one does
		{"ACC", ACCUnknown},
		{"AC", ACCUnknown},
		{"", ACCUnknown},
		{"定位", ACCUnknown},
		{"on", ACCUnknown},
		{"ACC O", ACCUnknown},
		{"ACC \xff", ACCUnknown},
		{"ACC ON\xff", ACCOn},
	} {
		if got := ParseACC(tc.cstate); got != tc.want {
			t.Errorf("ParseACC(%q) = %d, want %d", tc.cstate, got, tc.want)
		}
	}
}

// FuzzParseACC checks that ParseACC does not panic, that other states
// before the ACC token do not change what it finds, and that the first
// ACC token wins over a later one.
func FuzzParseACC(f *testing.F) {
	for _, s := range []string{"ACC开", "ACC OFF", "acc on;gps", "ACC：关", "VACC ON", "ACC 1,ACC ON"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseACC(s)
		if before := ParseACC("定位,GPS;" + s); before != got {
			t.Fatalf("ParseACC(%q) = %d, but %d after other states", s, got, before)
		}
		if got != ACCUnknown {
			if later := ParseACC(s + ",ACC关;ACC ON"); later != got {
				t.Fatalf("ParseACC(%q) = %d, but %d with later ACC tokens", s, got, later)
			}
		}
	})
}
