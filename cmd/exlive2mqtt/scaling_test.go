package main

import (
	"os"
	"path"
	"regexp"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestScalingKubernetesExample reads the Deployment that docs/scaling.md
// gives users to copy and checks what the page says of it: one replica,
// Recreate, the probes on the paths the program serves, secrets read from
// the files the volumes mount, and settings the program takes, with values
// it accepts (the password files are read from the mounts the Deployment
// gives them).
func TestScalingKubernetesExample(t *testing.T) {
	page, err := os.ReadFile("../../docs/scaling.md")
	if err != nil {
		t.Fatal(err)
	}
	var deployments int
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(page), -1) {
		var d struct {
			Kind string
			Spec struct {
				Replicas int
				Strategy struct{ Type string }
				Template struct {
					Spec struct {
						Containers []map[string]any
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(m[1]), &d); err != nil {
			t.Fatalf("a YAML block of docs/scaling.md does not parse: %v\n%s", err, m[1])
		}
		if d.Kind != "Deployment" {
			continue
		}
		deployments++
		if d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
			t.Errorf("Deployment: replicas %d, strategy %q; want 1 and Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Deployment: %d containers, want one", len(d.Spec.Template.Spec.Containers))
		}
		raw, _ := yaml.Marshal(d.Spec.Template.Spec.Containers[0])
		var c struct {
			Env   []struct{ Name, Value string }
			Ports []struct {
				Name          string
				ContainerPort int `yaml:"containerPort"`
			}
			Liveness struct {
				HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
			} `yaml:"livenessProbe"`
			Readiness struct {
				HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
			} `yaml:"readinessProbe"`
			Mounts []struct {
				Name      string
				MountPath string `yaml:"mountPath"`
			} `yaml:"volumeMounts"`
		}
		if err := yaml.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		if c.Liveness.HTTPGet.Path != "/healthz" || c.Readiness.HTTPGet.Path != "/readyz" ||
			c.Liveness.HTTPGet.Port != "http" || c.Readiness.HTTPGet.Port != "http" {
			t.Errorf("probes %+v %+v, want /healthz and /readyz on the http port", c.Liveness, c.Readiness)
		}
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 9883 {
			t.Errorf("ports %+v, want http on 9883", c.Ports)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if u := unknownVariables(env); len(u) > 0 {
			t.Errorf("Deployment names %v, which are no settings", u)
		}
		// The password files are where the volumes are mounted.
		var mounts []string
		for _, m := range c.Mounts {
			mounts = append(mounts, m.MountPath)
		}
		readFile := func(file string) ([]byte, error) {
			if !slices.Contains(mounts, path.Dir(file)) {
				t.Errorf("%s is not in a mounted volume %v", file, mounts)
			}
			return []byte("password"), nil
		}
		s, err := loadSettings(env, readFile, func() (string, error) { return "pod-1", nil })
		if err != nil {
			t.Fatalf("the Deployment's settings: %v", err)
		}
		if !slices.Contains(mounts, path.Dir(s.MQTT.StoreDir)) {
			t.Errorf("MQTT_STORE_DIR %s is not on a mounted volume %v", s.MQTT.StoreDir, mounts)
		}
		if env["MQTT_CLIENT_ID"] == "" || s.MQTT.TopicPrefix == "exlive" || len(s.Exlive.Addrs()) != 2 {
			t.Errorf("Deployment: client id %q, prefix %q, %d addresses; want a fixed client id, a prefix of its own, and the two addresses the page shows",
				env["MQTT_CLIENT_ID"], s.MQTT.TopicPrefix, len(s.Exlive.Addrs()))
		}
	}
	if deployments != 1 {
		t.Errorf("docs/scaling.md has %d Deployments, want the one example", deployments)
	}
}
