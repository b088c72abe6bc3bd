// Command gotemplate renders confd-style templates with Go's own
// text/template and a confd-compatible function map, so the tests can
// compare what imdsrender's migrated Jinja templates write with what confd
// would write, byte for byte.
//
// Input (stdin): a JSON list of cases {"template": "...", "store": {"/k": "v"}}
// where store is what confd's memkv store holds (keys relative to the
// prefix). Output (stdout): a JSON list of {"out": "...", "err": "..."}.
// The functions follow confd 0.40's template_funcs.go and memkv; datetime
// and the DNS lookups are left out on purpose (not reproducible).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path"
	"sort"
	"strings"
	"text/template"
)

type kvPair struct {
	Key   string
	Value string
}

type store map[string]string

type testCase struct {
	Template string `json:"template"`
	Store    store  `json:"store"`
}

type result struct {
	Out string `json:"out"`
	Err string `json:"err"`
}

func (s store) getv(key string, v ...string) (string, error) {
	if value, ok := s[key]; ok {
		return value, nil
	}
	if len(v) > 0 {
		return v[0], nil
	}
	return "", errors.New("key does not exist: " + key)
}

func (s store) exists(key string) bool {
	_, ok := s[key]
	return ok
}

func (s store) gets(pattern string) ([]kvPair, error) {
	pairs := []kvPair{}
	for k, v := range s {
		matched, err := path.Match(pattern, k)
		if err != nil {
			return nil, err
		}
		if matched {
			pairs = append(pairs, kvPair{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
	return pairs, nil
}

func (s store) getvs(pattern string) ([]string, error) {
	pairs, err := s.gets(pattern)
	if err != nil {
		return nil, err
	}
	values := []string{}
	for _, p := range pairs {
		values = append(values, p.Value)
	}
	sort.Strings(values)
	return values, nil
}

func terms(p string) []string { return strings.Split(path.Clean(p), "/") }

func hasPrefixTerms(prefix, test []string) bool {
	if len(test) < len(prefix) {
		return false
	}
	for i := range prefix {
		if prefix[i] != test[i] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ls is memkv's List: the names right below filePath.
func (s store) ls(filePath string) []string {
	names := map[string]bool{}
	prefix := terms(filePath)
	for k := range s {
		if k == filePath {
			names[path.Base(k)] = true
			continue
		}
		if hasPrefixTerms(prefix, terms(path.Dir(k))) {
			rest := strings.TrimPrefix(strings.TrimPrefix(k, filePath), "/")
			names[strings.Split(rest, "/")[0]] = true
		}
	}
	return sortedKeys(names)
}

// lsdir is memkv's ListDir: the names right below filePath that have children.
func (s store) lsdir(filePath string) []string {
	names := map[string]bool{}
	prefix := terms(filePath)
	for k := range s {
		if strings.HasPrefix(k, filePath) {
			items := terms(path.Dir(k))
			if hasPrefixTerms(prefix, items) && len(items)-len(prefix) >= 1 {
				names[items[len(prefix):][0]] = true
			}
		}
	}
	return sortedKeys(names)
}

func getenv(key string, v ...string) string {
	value := os.Getenv(key)
	if value == "" && len(v) > 0 {
		return v[0]
	}
	return value
}

func jsonObject(data string) (map[string]interface{}, error) {
	var ret map[string]interface{}
	err := json.Unmarshal([]byte(data), &ret)
	return ret, err
}

func jsonArray(data string) ([]interface{}, error) {
	var ret []interface{}
	err := json.Unmarshal([]byte(data), &ret)
	return ret, err
}

func base64Decode(data string) (string, error) {
	out, err := base64.StdEncoding.DecodeString(data)
	return string(out), err
}

func base64Encode(data string) string { return base64.StdEncoding.EncodeToString([]byte(data)) }

func funcMap(s store) template.FuncMap {
	return template.FuncMap{
		"getv": s.getv, "exists": s.exists, "gets": s.gets, "getvs": s.getvs,
		"ls": s.ls, "lsdir": s.lsdir,
		"base": path.Base, "dir": path.Dir, "split": strings.Split, "join": strings.Join,
		"json": jsonObject, "jsonArray": jsonArray, "getenv": getenv,
		"toUpper": strings.ToUpper, "toLower": strings.ToLower,
		"contains": strings.Contains, "replace": strings.Replace,
		"trimSuffix": strings.TrimSuffix,
		"base64Encode": base64Encode, "base64Decode": base64Decode,
		"add": func(a, b int) int { return a + b },
		"sub": func(a, b int) int { return a - b },
		"mul": func(a, b int) int { return a * b },
	}
}

func render(c testCase) result {
	tmpl, err := template.New("t").Funcs(funcMap(c.Store)).Parse(c.Template)
	if err != nil {
		return result{Err: err.Error()}
	}
	var buf bytes.Buffer
	// confd executes with nil data.
	if err := tmpl.Execute(&buf, nil); err != nil {
		return result{Out: buf.String(), Err: err.Error()}
	}
	return result{Out: buf.String()}
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		os.Stderr.WriteString("gotemplate: bad input: " + err.Error() + "\n")
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(2)
	}
}
