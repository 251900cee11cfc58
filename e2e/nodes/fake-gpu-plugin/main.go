// Command fake-gpu-plugin advertises fake GPUs to one kubelet through the device plugin API, so
// that GPU pods are scheduled and admitted on a machine without GPUs. A container given devices
// sees their IDs in NVIDIA_VISIBLE_DEVICES, as with NVIDIA's own plugin.
//
//	fake-gpu-plugin -dir KUBELET_ROOT/device-plugins -count N [-resource nvidia.com/gpu]
//
// A kubelet empties its device plugin directory when it starts, which removes this plugin's
// socket; the plugin then serves and registers again. It exits on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const socketName = "fake-gpu.sock"

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	devices []*pluginapi.Device
	stop    chan struct{}
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	// The devices never change; the stream stays open until the kubelet or the plugin goes.
	select {
	case <-s.Context().Done():
	case <-p.stop:
	}
	return nil
}

func (p *plugin) Allocate(_ context.Context, r *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range r.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

// serve listens on the plugin's socket in dir and registers with the kubelet there; the
// returned server is serving.
func serve(dir, resource string, p *plugin) (*grpc.Server, error) {
	sock := filepath.Join(dir, socketName)
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go func() { _ = srv.Serve(l) }()

	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "kubelet.sock"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     socketName,
		ResourceName: resource,
	})
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("registering with the kubelet: %w", err)
	}
	return srv, nil
}

func main() {
	dir := flag.String("dir", pluginapi.DevicePluginPath, "the kubelet's device plugin directory (holds kubelet.sock)")
	count := flag.Int("count", 1, "how many devices to advertise")
	resource := flag.String("resource", "nvidia.com/gpu", "the extended resource name")
	flag.Parse()
	if *count < 1 {
		log.Fatalf("-count must be at least 1, got %d", *count)
	}
	devices := make([]*pluginapi.Device, *count)
	for i := range devices {
		devices[i] = &pluginapi.Device{ID: fmt.Sprintf("fake-gpu-%d", i), Health: pluginapi.Healthy}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	sock := filepath.Join(*dir, socketName)

	for {
		p := &plugin{devices: devices, stop: make(chan struct{})}
		srv, err := serve(*dir, *resource, p)
		if err != nil {
			// The kubelet may not be listening yet; try again.
			log.Printf("not registered: %v", err)
		} else {
			log.Printf("registered %d %s with the kubelet in %s", *count, *resource, *dir)
		}
		for srv != nil {
			select {
			case <-signals:
				close(p.stop)
				srv.Stop()
				_ = os.Remove(sock)
				return
			case <-time.After(time.Second):
			}
			if _, err := os.Stat(sock); err != nil {
				log.Printf("%s is gone (the kubelet restarted); registering again", sock)
				close(p.stop)
				srv.Stop()
				srv = nil
			}
		}
		select {
		case <-signals:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
